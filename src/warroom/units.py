"""Numbers in the units a launch team reads: 1.23 %, 512 ms, 12.4k, 1.5 GiB."""

from __future__ import annotations

import math


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


def plan_duration(seconds: float) -> str:
    """A duration as a plan writes it: 30s, 30m, 1h, 1h30m, 24h (no zero parts)."""
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return "".join(f"{n}{u}" for n, u in ((h, "h"), (m, "m"), (s, "s")) if n) or "0s"
