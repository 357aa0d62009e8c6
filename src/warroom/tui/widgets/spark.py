"""A one-line sparkline: one cell per sample, newest on the right, in one colour.

Textual's Sparkline buckets the whole history into the width and styles every cell on
its own; over SSH at 1 Hz that is ~24 bytes a cell. Here each cell is one poll (a steady
time axis) and the line is a single styled run.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

BARS = "▁▂▃▄▅▆▇█"


def spark_lines(values: tuple[float, ...], width: int, height: int = 1) -> list[str]:
    """The last `width` values as bars, `height` rows tall, scaled between their own min and max."""
    shown = values[-width:] if width > 0 else ()
    if not shown:
        return [""] * max(1, height)
    low, high = min(shown), max(shown)
    span = high - low
    steps = len(BARS) * height  # eighths of a row, over all rows
    levels = [0 if span <= 0 else round((v - low) / span * (steps - 1)) for v in shown]
    rows = []
    for row in range(height):  # top row first
        floor = len(BARS) * (height - 1 - row)
        rows.append("".join(" " if lvl < floor else BARS[min(lvl - floor, len(BARS) - 1)] for lvl in levels))
    return rows


class Spark(Widget):
    COMPONENT_CLASSES = {"spark--bar"}
    DEFAULT_CSS = """
    Spark { height: 1; }
    Spark > .spark--bar { color: $success; }
    """

    data: reactive[tuple[float, ...]] = reactive(())

    def render(self) -> Text:
        lines = spark_lines(self.data, self.size.width, max(1, self.size.height))
        return Text("\n".join(lines), style=self.get_component_rich_style("spark--bar"), no_wrap=True)
