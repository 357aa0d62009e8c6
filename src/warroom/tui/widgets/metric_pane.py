"""One plan pane: the number, its limit, a sparkline of history, and how fresh it is."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from ...snapshot import GuardrailView, PaneView
from ...units import format_duration, format_value
from ..refresh import set_text
from .spark import Spark

STATUSES = ("ok", "warn", "breach", "stale", "nodata")
# Status as a word as well as a colour (NO_COLOR, colour-blind readers).
STATUS_WORD = {"ok": "", "warn": "WARN", "breach": "BREACH", "stale": "STALE", "nodata": "NO DATA"}


def limit_text(pane: PaneView) -> str:
    if pane.breach is None:
        return ""
    sign = "≤" if pane.bad_side == "above" else "≥"
    return f"{sign}{format_value(pane.breach, pane.unit)}"


def age_text(pane: PaneView) -> str:
    if pane.age is None:
        return "no sample yet"
    return "now" if pane.age < 1 else f"{format_duration(pane.age)} ago"


WOULD = {"rollback": "WOULD roll back", "pause": "WOULD pause", "alert": "WOULD alert"}


def breach_text(pane: PaneView, guards: tuple[GuardrailView, ...], enforced: bool = True) -> str:
    """What the breach will do and when: `ROLLBACK in 4s` or `ROLLBACK: FIRED`; with no engine
    alive, nothing will: `WOULD roll back`."""
    acting = [g for g in guards if g.id in pane.guardrails and g.status in ("pending", "breach")]
    if not acting:
        return ""
    g = max(acting, key=lambda v: v.progress)
    if not enforced:
        return WOULD.get(g.action, f"WOULD {g.action}")
    if g.status == "breach":
        return f"{g.action.upper()}: FIRED"
    left = g.for_s * (1 - g.progress)
    return f"{g.action.upper()} in {format_duration(left)}"


class MetricPane(Widget):
    """A pane's state is a class (-ok/-warn/-breach/-stale/-nodata) so themes colour it."""

    DEFAULT_CSS = """
    MetricPane { height: 3; padding: 0 1; background: $surface; }
    MetricPane Horizontal { height: 1; }
    MetricPane #title { width: 1fr; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    MetricPane .value { width: auto; text-style: bold; }
    MetricPane #reading { height: auto; }
    MetricPane #reading Spark { width: 1fr; }
    MetricPane #value-inline { display: none; margin-right: 1; }
    MetricPane #meta { width: 1fr; color: $text-muted; }
    MetricPane #status { width: auto; text-style: bold; margin-right: 1; }
    MetricPane.-ok #status { display: none; }
    MetricPane Spark > .spark--bar { color: $success; }
    MetricPane.-warn .value, MetricPane.-warn #status { color: $warning; }
    MetricPane.-warn Spark > .spark--bar { color: $warning; }
    MetricPane.-breach { background: $error 20%; }
    MetricPane.-breach .value { color: $error; }
    MetricPane.-breach #status { color: $error; text-style: bold reverse; }
    MetricPane.-breach Spark > .spark--bar { color: $error; }
    MetricPane.-stale .value, MetricPane.-nodata .value { color: $status-stale; text-style: italic; }
    MetricPane.-stale #status, MetricPane.-nodata #status { color: $status-stale; text-style: bold reverse; }
    MetricPane.-stale Spark > .spark--bar { color: $status-stale; }
    """

    pane: reactive[PaneView | None] = reactive(None, always_update=True, repaint=False)  # parts update themselves

    def __init__(self, pane: PaneView, guards: tuple[GuardrailView, ...] = (), enforced: bool = True, **kw) -> None:
        # Born with its status class: adding it on mount would restyle the pane's subtree.
        super().__init__(id=f"pane-{pane.id}", classes=f"-{pane.status}", **kw)
        self._guards = guards
        self._enforced = enforced  # an engine is alive to act on a breach
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

    def show(self, pane: PaneView, guards: tuple[GuardrailView, ...], enforced: bool = True) -> None:
        self._guards = guards
        self._enforced = enforced
        self.pane = pane

    def watch_pane(self) -> None:
        if self.is_mounted:
            self._show()

    def _show(self) -> None:
        pane = self.pane
        if pane is None:
            return
        for status in STATUSES:
            self.set_class(pane.status == status, f"-{status}")
        set_text(self.query_one("#title", Static), pane.title)
        for value in self.query(".value").results(Static):
            set_text(value, format_value(pane.value, pane.unit))
        self.query_one(Spark).data = tuple(v for v in pane.history if v is not None)
        # The line under the sparkline says what matters most now: what a breach will
        # do and when (in the loud badge), else how old the number is, else limit and freshness.
        acting = breach_text(pane, self._guards, self._enforced)
        if pane.note:  # a cohort guardrail's both sides, or why it cannot judge (not enough traffic)
            meta = pane.note
        elif acting:
            meta = ""
        elif pane.status in ("stale", "nodata"):
            meta = age_text(pane)
        else:
            meta = " · ".join(x for x in (limit_text(pane), age_text(pane)) if x)
        set_text(self.query_one("#meta", Static), meta)
        set_text(self.query_one("#status", Static), acting or STATUS_WORD.get(pane.status, pane.status.upper()))
        self.tooltip = pane.detail or None
