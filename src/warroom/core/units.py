"""Numbers in the units a launch team reads: 1.23 %, 512 ms, 12.4k, 1.5 GiB; durations like 1h30m."""

from __future__ import annotations

import math
import re
from typing import Any


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if unit == "ratio":
        return _percent(value * 100)
    if unit == "percent":
        return _percent(value)
    if unit == "seconds":
        return _millis(value * 1000)
    if unit == "ms":
        return _millis(value)
    if unit == "bytes":
        for suffix in ("B", "KiB", "MiB", "GiB", "TiB"):
            if abs(value) < 1024 or suffix == "TiB":
                return f"{value:.0f} {suffix}" if suffix == "B" else f"{value:.1f} {suffix}"
            value /= 1024
    if abs(value) >= 10_000:
        return f"{value / 1000:.1f}k"
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:.2f}"


def _percent(p: float) -> str:
    if p == 0:
        return "0%"
    if abs(p) < 0.1:
        return f"{p:.3f}%"
    if abs(p) < 100:
        return f"{p:.2f}%"
    return f"{p:.1f}%"


def _millis(ms: float) -> str:
    if abs(ms) >= 1000:
        return f"{ms / 1000:.2f} s"
    if abs(ms) >= 10:
        return f"{ms:.0f} ms"
    return f"{ms:.1f} ms"


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION_HELP = "a duration like 30s, 5m, 1h or 1h30m"


def parse_duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_HELP}")
    if isinstance(value, (int, float)):
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"expected {DURATION_HELP}, not a negative or infinite number")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected {DURATION_HELP}")
    text = value.strip().replace(" ", "")
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
    return total


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"
def plan_duration(seconds: float) -> str:
    """A duration as a plan writes it: 30s, 30m, 1h, 1h30m, 24h (no zero parts)."""
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return "".join(f"{n}{u}" for n, u in ((h, "h"), (m, "m"), (s, "s")) if n) or "0s"
