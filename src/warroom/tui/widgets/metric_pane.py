"""One plan pane: the number, its limit, a chart of recent history, and how fresh it is.

One widget that draws its own lines (title and value, the chart, the status and what the
chart spans): eight panes are eight widgets, not sixty-four, so the console's first frame
comes sooner, and a poll repaints only the panes whose picture changed.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.css.scalar import Unit
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive

from warroom.core.condition import countdown, until_text
from warroom.core.snapshot import GuardrailView, PaneView
from warroom.core.statuses import GuardrailStatus, PaneStatus
from warroom.core.units import format_duration, format_value
from warroom.tui.clock_text import compact_duration
from warroom.tui.keymap import bindings
from warroom.tui.parts import Parts
from warroom.tui.refresh import changed
from warroom.tui.widgets.spark import pane_scale, spark_rows

STATUSES = tuple(PaneStatus)
# Status as a word as well as a colour (NO_COLOR, colour-blind readers).
STATUS_WORD = {PaneStatus.OK: "", PaneStatus.WARN: "WARN", PaneStatus.BREACH: "BREACH", PaneStatus.STALE: "STALE", PaneStatus.NODATA: "NO DATA"}
VALUE_MIN = 7  # cells the value keeps beside a narrow pane's chart ("99.83%", "118 ms")


def limit_text(pane: PaneView) -> str:
    if pane.breach is None:
        return ""
    sign = "≤" if pane.bad_side == "above" else "≥"
    return f"{sign}{format_value(pane.breach, pane.unit)}"


def value_text(pane: PaneView) -> str:
    """The value; a breaching one carries a marker of the bad direction (seen without colour too)."""
    value = format_value(pane.value, pane.unit)
    if pane.status == PaneStatus.BREACH:
        return ("▲ " if pane.bad_side == "above" else "▼ ") + value
    return value


def age_text(pane: PaneView, now: float) -> str:
    if pane.last_good_at is None:
        return "no sample yet"
    age = max(0.0, now - pane.last_good_at)
    return "now" if age < 1 else f"{format_duration(age)} ago"


def window_text(cells: int, poll: float) -> str:
    """The span a chart draws: one cell a poll, so the cells it has filled times the poll interval."""
    return f"last {compact_duration(cells * poll)}" if cells and poll else ""



def acting_text(pane: PaneView, guards: tuple[GuardrailView, ...], now: float, enforced: bool = True) -> str:
    """What a breach will do and when: `ROLLBACK in 4s`, or `ROLLBACK: FIRED` once it has; with
    no engine alive, nothing will: `WOULD roll back`."""
    acting = [g for g in guards if g.id in pane.guardrails and g.status.breaching and g.mode != "shadow"]
    if not acting:
        return ""
    g = max(acting, key=lambda v: v.progress)
    if not enforced:
        return f"WOULD {g.action.phrase}"
    if g.status == GuardrailStatus.BREACH:
        return f"{g.action.upper()}: FIRED"
    return f"{g.action.upper()} in {until_text(countdown(g, now))}"


def alarm_rank(pane: PaneView) -> tuple[int, float]:
    """Which pane `z` zooms when none is focused, lowest first: a breach; one without data (no
    data is no good news); else the pane nearest its limit (as far up its chart as its value is
    drawn); then the rest."""
    if pane.status == PaneStatus.BREACH or pane.status.silent:
        return (0 if pane.status == PaneStatus.BREACH else 1), 0.0
    if pane.breach is not None and pane.value is not None:
        return 2, -pane_scale(pane.history, pane.breach, pane.bad_side, pane.unit).fraction(pane.value)
    return 3, 0.0


def shown_status(pane: PaneView, enforced: bool) -> PaneStatus:
    """The pane's status as the screen tells it: with no engine nothing samples any more, so a
    value is the last one sampled (stale), whatever it was then."""
    return PaneStatus.STALE if not enforced and pane.status != PaneStatus.NODATA else pane.status


class MetricPane(Parts, can_focus=True):
    """A pane's state is a class (-ok/-warn/-breach/-stale/-nodata) so themes colour its box;
    its parts are styled by status from PARTS."""

    BINDINGS = bindings("pane")
    PARTS = {
        "title": "$text-muted", "title-focus": "$accent bold underline", "meta": "$text-muted",
        "breach": "$error bold", "limit": "$warning",  # a chart's cells past the threshold, and the threshold
        "value-ok": "bold", "value-warn": "$warning bold", "value-breach": "$error bold reverse",
        "value-stale": "$status-stale italic", "value-nodata": "$status-stale italic",
        "status-ok": "bold", "status-warn": "$warning bold", "status-breach": "$error bold reverse",
        "status-stale": "$status-stale bold reverse", "status-nodata": "$status-stale bold reverse",
        "bar-ok": "$success", "bar-warn": "$warning", "bar-breach": "$warning", "bar-stale": "$status-stale",
        "bar-nodata": "$status-stale",
    }
    DEFAULT_CSS = """
    MetricPane { height: 3; padding: 0 1; background: $surface; }
    MetricPane:focus { background: $boost; }
    MetricPane.-breach { background: $error 20%; }
    """

    class Zoom(Message):
        """Open this pane full-screen."""

        def __init__(self, pane_id: str) -> None:
            super().__init__()
            self.pane_id = pane_id

    pane: reactive[PaneView | None] = reactive(None, always_update=True, repaint=False)

    def __init__(self, pane: PaneView, guards: tuple[GuardrailView, ...] = (), poll: float = 0.0, now: float = 0.0,
                 enforced: bool = True, **kw) -> None:
        # Born with its status class: adding it on mount would restyle the pane once more.
        super().__init__(id=f"pane-{pane.id}", classes=f"-{shown_status(pane, enforced)}", **kw)
        self._guards = guards
        self._poll = poll
        self._enforced = enforced  # an engine is alive to act on a breach
        self._now = now  # the engine's time, moved each second by PanesGrid.tick
        self._lines: list[Text] | None = None
        self._lines_at: tuple[int, int, bool] | None = None  # the size (and narrowness) they were drawn for
        self.set_reactive(MetricPane.pane, pane)

    def show(self, pane: PaneView, guards: tuple[GuardrailView, ...], poll: float, now: float, enforced: bool = True) -> None:
        self._guards, self._poll, self._now, self._enforced = guards, poll, now, enforced
        self.pane = pane

    def tick(self, now: float) -> None:
        """The clock moved: only a countdown or the age of a stale value moves with it."""
        self._now = now
        pane = self.pane
        if pane is not None and (shown_status(pane, self._enforced).silent or pane.for_progress is not None):
            self._update()

    def watch_pane(self) -> None:
        pane = self.pane
        if pane is None:
            return
        status = shown_status(pane, self._enforced)
        for name in STATUSES:
            self.set_class(status == name, f"-{name}")
        if self.tooltip != (pane.detail or None):
            self.tooltip = pane.detail or None
        self._update()

    def _update(self) -> None:
        """Repaint when what the pane draws changed (a poll), not for every snapshot or second."""
        self._lines = None
        lines = self._render_lines()
        if changed(self, tuple((line.plain, tuple(line.spans)) for line in lines)):
            self.refresh()

    def notify_style_update(self) -> None:
        self._lines = None  # drawn with the old theme's styles
        super().notify_style_update()

    def on_resize(self) -> None:
        self._update()  # the chart's span follows its width

    def on_focus(self) -> None:
        self._lines = None
        self.refresh()

    def on_blur(self) -> None:
        self._lines = None
        self.refresh()

    def action_zoom(self) -> None:
        if self.pane is not None:
            self.post_message(self.Zoom(self.pane.id))

    # ------------------------------------------------------------ drawing

    def meta_text(self, cells: int) -> str:
        """Under the chart: the limit and the span drawn; a stale value's age first (and why)."""
        pane = self.pane
        assert pane is not None
        if not self._enforced and pane.status != PaneStatus.NODATA:
            return age_text(pane, self._now)  # nothing samples it (the banner says NO ENGINE): how old it is
        if pane.status.silent:
            return " · ".join(x for x in (age_text(pane, self._now), pane.detail) if x)
        if pane.note:  # a cohort guardrail's both sides, or why it cannot judge (not enough traffic)
            return pane.note
        return " · ".join(x for x in (limit_text(pane) or "no limit", window_text(cells, self._poll)) if x)

    def _render_lines(self) -> list[Text]:
        pane = self.pane
        width, height = self.content_region.width, self.content_region.height
        narrow = self.screen.has_class("-narrow") if self.is_attached else False
        # Lines are drawn for a size: a relayout resizes the pane and repaints it before its Resize
        # event is handled, and lines drawn for a wider pane wrapped there (the bars fell off the chart's line).
        if self._lines is not None and self._lines_at == (width, height, narrow):
            return self._lines
        if pane is None or width <= 0 or height <= 0:
            return []
        status = shown_status(pane, self._enforced)

        def style(part: str) -> Style:
            if part in ("value", "status", "bar"):
                return self.part(f"{part}-{status}")
            return self.part("title-focus" if part == "title" and self.has_focus else part)

        value = value_text(pane)
        chart_rows = max(1, height - 2)
        if narrow:  # the title gets its whole line ("Connection success" whole at 80 columns); the value goes by the chart
            inline = max(VALUE_MIN, cell_len(value)) + 1
            head = Text(pane.title, style=style("title"))
        else:
            inline = 0
            head = Text(pane.title, style=style("title"))
            head.truncate(max(1, width - cell_len(value) - 1), overflow="ellipsis")
            head.pad_right(width - head.cell_len - cell_len(value))
            head.append(value, style("value"))
        chart_width = max(1, width - inline)
        scale = pane_scale(pane.history, pane.breach, pane.bad_side, pane.unit)
        rows = spark_rows(pane.history, chart_width, chart_rows, scale, style("bar"), style("breach"), style("limit"))
        if narrow:
            pad = " " * (inline - 1 - cell_len(value))
            rows = [Text.assemble((value + pad, style("value")), " ", row) if i == 0 else Text.assemble(" " * inline, row)
                    for i, row in enumerate(rows)]
        word = acting_text(pane, self._guards, self._now, self._enforced) or STATUS_WORD.get(status, "")
        foot = Text.assemble((word, style("status")), " " if word else "",
                             (self.meta_text(min(len(pane.history), chart_width)), style("meta")))
        lines = [head, *rows, foot] if height >= 3 else [head, foot][:height]
        for line in lines:
            line.no_wrap, line.overflow = True, "ellipsis"
            line.truncate(width, overflow="ellipsis")
        self._lines, self._lines_at = lines, (width, height, narrow)
        return lines

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """The height its CSS gives it (3 rows; a box of 6 on a tall screen), which the panes' grid
        asks for its rows: a title line, the chart, a status line."""
        height = self.styles.height
        if height is not None and height.unit == Unit.CELLS:
            return max(1, int(height.value) - self.styles.gutter.height)
        return 3

    def render(self) -> Text:
        return Text("\n").join(self._render_lines())
