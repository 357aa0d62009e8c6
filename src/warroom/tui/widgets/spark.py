"""Sparklines that mean something: one cell per poll, newest on the right, scaled from
zero (or the pane's natural floor) to a little past the breach threshold.

A p50 moving from 17 to 19 ms against a 100 ms limit stays a calm low line; a bar at the
top is a breach. A pane whose limit is a minimum (connection success ≥ 95 %) draws how far
it has fallen below its ceiling, so health is a low line there too and a tall bar is always
bad. Cells past the threshold are drawn in the breach style, and a chart two rows or taller
draws the threshold itself (`╌`). A cell is one sample, never a bucket: the label under a
chart says the span drawn, and the newest cell is the newest sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive

from warroom.tui.parts import Parts

BARS = "▁▂▃▄▅▆▇█"
HEADROOM = 0.25  # the scale reaches 25% past the threshold: the limit sits at 80% of the height
LIMIT_MARK = "╌"


@dataclass(frozen=True)
class Scale:
    low: float
    high: float
    limit: float | None = None  # the breach threshold
    bad_above: bool = True  # False: a minimum; bars grow as the value falls from `high`

    def fraction(self, value: float) -> float:
        """How tall `value` is drawn, 0..1: towards the bad side is up."""
        span = self.high - self.low
        if span <= 0:
            return 0.0
        drawn = (value - self.low) if self.bad_above else (self.high - value)
        return min(1.0, max(0.0, drawn / span))

    def breaches(self, value: float) -> bool:
        if self.limit is None:
            return False
        return value > self.limit if self.bad_above else value < self.limit


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def pane_scale(values: Sequence[float | None], breach: float | None, bad_side: str, unit: str) -> Scale:
    """Zero (or the natural floor) to a little past the breach threshold.

    A pane that is bad below its threshold (connection success ≥ 95 %) is drawn from its
    natural ceiling (100 % for a ratio) down to a little under the threshold: a drop towards
    the threshold is a rising bar, and a healthy 99.8 % a low one.
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


class Spark(Parts):
    """A chart widget (the zoomed pane's); its parent sets `data` and `scale`."""

    PARTS = {"bar": "$success", "breach": "$error bold", "limit": "$warning"}
    DEFAULT_CSS = """
    Spark { height: 1; }
    """

    data: reactive[tuple[float | None, ...]] = reactive(())
    scale: reactive[Scale] = reactive(Scale(0.0, 1.0))

    def render(self) -> Text:
        rows = spark_rows(self.data, self.size.width, self.size.height, self.scale,
                          self.part("bar"), self.part("breach"), self.part("limit"))
        return Text("\n").join(rows)
