"""One plan pane: the number, its limit, a chart of recent history, and how fresh it is."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from warroom.core.condition import countdown, until_text
from warroom.core.snapshot import GuardrailView, PaneView
from warroom.core.statuses import GuardrailStatus, PaneStatus
from warroom.core.units import format_duration, format_value
from warroom.tui.clock_text import compact_duration
from warroom.tui.keymap import bindings
from warroom.tui.refresh import part, set_text
from warroom.tui.widgets.spark import Spark, pane_scale

STATUSES = tuple(PaneStatus)
# Status as a word as well as a colour (NO_COLOR, colour-blind readers).
STATUS_WORD = {PaneStatus.OK: "", PaneStatus.WARN: "WARN", PaneStatus.BREACH: "BREACH", PaneStatus.STALE: "STALE", PaneStatus.NODATA: "NO DATA"}


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
    """The chart's span: one cell per poll."""
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


class MetricPane(Widget, can_focus=True):
    """A pane's state is a class (-ok/-warn/-breach/-stale/-nodata) so themes colour it."""

    BINDINGS = bindings("pane")
    DEFAULT_CSS = """
    MetricPane { height: 3; padding: 0 1; background: $surface; }
    MetricPane:focus { background: $boost; }
    MetricPane:focus #title { color: $accent; text-style: bold underline; }
    MetricPane Horizontal { height: 1; }
    MetricPane #title { width: 1fr; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    MetricPane .value { width: auto; text-style: bold; }
    MetricPane #reading { height: 1fr; }
    MetricPane #reading Spark { width: 1fr; height: 1fr; }
    MetricPane #value-inline { display: none; margin-right: 1; min-width: 7; }
    MetricPane #meta { width: 1fr; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    MetricPane #status { width: auto; text-style: bold; margin-right: 1; }
    MetricPane.-ok #status { display: none; }
    MetricPane Spark > .spark--bar { color: $success; }
    MetricPane.-warn .value, MetricPane.-warn #status { color: $warning; }
    MetricPane.-warn Spark > .spark--bar { color: $warning; }
    MetricPane.-breach { background: $error 20%; }
    MetricPane.-breach .value { color: $error; text-style: bold reverse; }
    MetricPane.-breach #status { color: $error; text-style: bold reverse; }
    MetricPane.-breach Spark > .spark--bar { color: $warning; }
    MetricPane.-stale .value, MetricPane.-nodata .value { color: $status-stale; text-style: italic; }
    MetricPane.-stale #status, MetricPane.-nodata #status { color: $status-stale; text-style: bold reverse; }
    MetricPane.-stale Spark > .spark--bar { color: $status-stale; }
    """

    class Zoom(Message):
        """Open this pane full-screen."""

        def __init__(self, pane_id: str) -> None:
            super().__init__()
            self.pane_id = pane_id

    pane: reactive[PaneView | None] = reactive(None, always_update=True, repaint=False)  # parts update themselves

    def __init__(self, pane: PaneView, guards: tuple[GuardrailView, ...] = (), poll: float = 0.0, now: float = 0.0,
                 enforced: bool = True, **kw) -> None:
        # Born with its status class: adding it on mount would restyle the pane's subtree.
        super().__init__(id=f"pane-{pane.id}", classes=f"-{pane.status}", **kw)
        self._guards = guards
        self._poll = poll
        self._enforced = enforced  # an engine is alive to act on a breach
        self._now = now  # the engine's time, moved each second by PanesGrid.tick
        self.set_reactive(MetricPane.pane, pane)

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static(id="title", markup=False)
            yield Static(id="value", classes="value", markup=False)
        # On a narrow screen (app.tcss) the value moves beside its sparkline, so the title
        # has the line to itself: at 80 columns "Connection success" is not cut to "Connection".
        with Horizontal(id="reading"):
            yield Static(id="value-inline", classes="value", markup=False)
            yield Spark()
        with Horizontal():
            yield Static(id="status", markup=False)
            yield Static(id="meta", markup=False)

    def on_mount(self) -> None:
        self._show()

    def show(self, pane: PaneView, guards: tuple[GuardrailView, ...], poll: float, now: float, enforced: bool = True) -> None:
        self._guards, self._poll, self._now, self._enforced = guards, poll, now, enforced
        self.pane = pane

    def tick(self, now: float) -> None:
        """The clock moved: only a countdown or the age of a stale value moves with it."""
        self._now = now
        pane = self.pane
        if self.is_mounted and pane is not None and (pane.status.silent or pane.for_progress is not None):
            self._show_time()

    def watch_pane(self) -> None:
        if self.is_mounted:
            self._show()

    def action_zoom(self) -> None:
        if self.pane is not None:
            self.post_message(self.Zoom(self.pane.id))

    def _show(self) -> None:
        pane = self.pane
        if pane is None:
            return
        for status in STATUSES:
            self.set_class(pane.status == status, f"-{status}")
        set_text(part(self, "#title", Static), pane.title)
        for value in ("#value", "#value-inline"):
            set_text(part(self, value, Static), value_text(pane))
        spark = part(self, "Spark", Spark)
        spark.scale = pane_scale(pane.history, pane.breach, pane.bad_side, pane.unit)
        spark.data = pane.history
        if self.tooltip != (pane.detail or None):
            self.tooltip = pane.detail or None
        self._show_time()

    def _show_time(self) -> None:
        """The parts that move with the clock: a countdown, the age of a stale value."""
        pane = self.pane
        if pane is None:
            return
        acting = acting_text(pane, self._guards, self._now, self._enforced)
        if pane.note:  # a cohort guardrail's both sides, or why it cannot judge (not enough traffic)
            meta = pane.note
        elif pane.status.silent:
            meta = " · ".join(x for x in (age_text(pane, self._now), pane.detail) if x)
        else:
            window = window_text(part(self, "Spark", Spark).size.width, self._poll)
            meta = " · ".join(x for x in (limit_text(pane), window) if x)
        set_text(part(self, "#meta", Static), meta)
        set_text(part(self, "#status", Static), acting or STATUS_WORD.get(pane.status, pane.status.upper()))

    def on_resize(self) -> None:
        self._show_time()  # the window label follows the chart's width
