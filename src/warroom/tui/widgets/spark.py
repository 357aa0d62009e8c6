"""Sparklines that mean something: one cell per poll, newest on the right, scaled from
zero (or the pane's natural floor) to a little past the breach threshold.

A p50 moving from 17 to 19 ms against a 100 ms limit stays a calm low line; a bar at the
top is a breach. Cells past the threshold are drawn in the breach style, and a chart two
rows or taller draws the threshold itself (`╌`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive

from warroom.tui.refresh import CachedComponentStyles

BARS = "▁▂▃▄▅▆▇█"
HEADROOM = 0.25  # the scale reaches 25% past the threshold: the limit sits at 80% of the height
LIMIT_MARK = "╌"


@dataclass(frozen=True)
class Scale:
    low: float
    high: float
    limit: float | None = None  # the breach threshold
    bad_above: bool = True

    def fraction(self, value: float) -> float:
        span = self.high - self.low
        return 0.0 if span <= 0 else min(1.0, max(0.0, (value - self.low) / span))

    def breaches(self, value: float) -> bool:
        if self.limit is None:
            return False
        return value > self.limit if self.bad_above else value < self.limit


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def pane_scale(values: Sequence[float | None], breach: float | None, bad_side: str, unit: str) -> Scale:
    """Zero (or the natural floor) to a little past the breach threshold.

    A pane that is bad below its threshold (connection success ≥ 95 %) is scaled from a
    little under the threshold to its natural ceiling (100 % for a ratio), so a drop
    towards the threshold is a visible fall rather than a hair off a full bar.
    """
    seen = _finite(values)
    if breach is None:
        top = max(seen, default=1.0)
        return Scale(min(0.0, *seen) if seen else 0.0, top * 1.1 if top > 0 else 1.0)
    if bad_side == "above":
        floor = min(0.0, breach, *seen) if seen else min(0.0, breach)
        return Scale(floor, breach + (breach - floor) * HEADROOM if breach > floor else floor + 1.0, breach, True)
    ceiling = {"ratio": 1.0, "percent": 100.0}.get(unit, max([breach, *seen]) * 1.05 if breach > 0 else 1.0)
    ceiling = max(ceiling, breach)
    span = ceiling - breach or abs(breach) or 1.0
    return Scale(breach - span * HEADROOM, ceiling, breach, False)


def fit(values: Sequence[float | None], width: int, bad_above: bool = True) -> list[float | None]:
    """At most `width` cells: the newest samples one a cell, or, when the history is longer
    than the room (a zoomed pane), buckets of samples each drawn at its worst value."""
    if width <= 0:
        return []
    if len(values) <= width:
        return list(values)
    out: list[float | None] = []
    for i in range(width):
        bucket = _finite(values[i * len(values) // width:(i + 1) * len(values) // width])
        out.append((max if bad_above else min)(bucket) if bucket else None)
    return out


def spark_rows(values: Sequence[float | None], width: int, height: int, scale: Scale,
               bar: Style | str = "", breach: Style | str = "", limit: Style | str = "") -> list[Text]:
    """The newest `width` values as bars `height` rows tall, top row first, right-aligned."""
    height = max(1, height)
    cells = list(values[-width:]) if width > 0 else []
    cells = [*([None] * (max(0, width) - len(cells))), *cells]
    steps = len(BARS) * height
    limit_row = None
    if scale.limit is not None and height >= 2:
        limit_row = min(height - 1, int(scale.fraction(scale.limit) * steps) // len(BARS))
    # Each cell once: its level in eighths of a row (0: no sample) and its style.
    cells_drawn: list[tuple[int, Style | str]] = []
    for value in cells:
        if value is None or math.isnan(value):
            cells_drawn.append((0, ""))
        else:  # a sample always shows, even at zero
            cells_drawn.append((max(1, round(scale.fraction(value) * steps)), breach if scale.breaches(value) else bar))
    rows: list[Text] = []
    for row in range(height - 1, -1, -1):  # rows counted from the bottom; the top one is drawn first
        floor = len(BARS) * row
        runs: list[tuple[str, Style | str]] = []  # one span per run of a style: fewer bytes over SSH
        for level, style in cells_drawn:
            if level > floor:
                char = BARS[min(level - floor, len(BARS)) - 1]
            elif row == limit_row:
                char, style = LIMIT_MARK, limit
            else:
                char, style = " ", ""
            if runs and runs[-1][1] == style:
                runs[-1] = (runs[-1][0] + char, style)
            else:
                runs.append((char, style))
        rows.append(Text.assemble(*runs, no_wrap=True, overflow="crop"))
    return rows


class Spark(CachedComponentStyles):
    """A pane's chart; its parent sets `data` and `scale`."""

    COMPONENT_CLASSES = {"spark--bar", "spark--breach", "spark--limit"}
    DEFAULT_CSS = """
    Spark { height: 1; }
    Spark > .spark--bar { color: $success; }
    Spark > .spark--breach { color: $error; text-style: bold; }
    Spark > .spark--limit { color: $warning; }
    """

    data: reactive[tuple[float | None, ...]] = reactive(())
    scale: reactive[Scale] = reactive(Scale(0.0, 1.0))

    def render(self) -> Text:
        style = self.component_style
        values = fit(self.data, self.size.width, self.scale.bad_above)
        rows = spark_rows(values, self.size.width, self.size.height, self.scale,
                          style("spark--bar"), style("spark--breach"), style("spark--limit"))
        return Text("\n").join(rows)
