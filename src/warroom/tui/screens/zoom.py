"""One pane full-screen: its history (one cell a poll), the threshold, and the guardrail's `for` window.

The banner stays on top, live, so a countdown or a rollback is never out of sight; every
console key still works here (R rolls back).
"""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static

from warroom.core.condition import countdown, until_text
from warroom.core.guardrail_actions import GuardrailAction
from warroom.core.snapshot import GuardrailView, PaneView, Snapshot
from warroom.core.statuses import GuardrailStatus
from warroom.core.units import format_value
from warroom.tui.clock_text import clock_text, compact_duration
from warroom.tui.console_app import ConsoleApp
from warroom.tui.refresh import set_text
from warroom.tui.screens.under_banner import follow_the_app
from warroom.tui.widgets.banner import Banner
from warroom.tui.widgets.metric_pane import STATUS_WORD, acting_text, limit_text, shown_status, value_text
from warroom.tui.widgets.spark import Scale, Spark, pane_scale


def axis_labels(scale: Scale, height: int, unit: str) -> list[str]:
    """Labels beside the chart: its top, the threshold's row, its bottom."""
    rows = [""] * height
    if height <= 0:
        return rows
    # A minimum's chart grows downwards in value (how far it fell): its top is its lowest value.
    top, bottom = (scale.high, scale.low) if scale.bad_above else (scale.low, scale.high)
    rows[0] = format_value(top, unit)
    rows[-1] = format_value(bottom, unit)
    if scale.limit is not None and height >= 3:
        row = height - 1 - min(height - 1, int(scale.fraction(scale.limit) * height))
        rows[row] = format_value(scale.limit, unit) + " ╌"
    return rows


def for_window_line(cells: int, width: int, poll: float, guards: list[GuardrailView]) -> str:
    """Under the chart: its span on the left, the longest acting guardrail's `for` window
    bracketed over the newest cells on the right."""
    span = f"◀ last {compact_duration(cells * poll)}" if cells and poll else ""
    if not guards or not poll or width <= 0:
        return span
    guard = max(guards, key=lambda g: g.for_s)
    n = min(width, max(1, math.ceil(guard.for_s / poll)))  # one cell a poll
    label = f"for {compact_duration(guard.for_s)}"
    if n >= len(label) + 2:
        bracket = "├" + label.center(n - 2, "─") + "┤"
    else:
        bracket = label + " " + ("├" + "─" * (n - 2) + "┤" if n >= 2 else "│")
    return span + " " * max(1, width - len(span) - len(bracket)) + bracket


def guard_line(guard: GuardrailView, now: float) -> str:
    sign = ">" if guard.op == "above" else "<"
    rule = guard.shown or f"{guard.action} when {sign} {format_value(guard.threshold, guard.unit)}"
    shadow = " (shadow: journals, never acts)" if guard.mode == "shadow" else ""
    if guard.status == GuardrailStatus.IGNORED:  # a comparison with nothing to compare yet (nobody on the new code)
        judged = f"not judged now: {guard.detail}" if guard.detail else "not judged now"
    else:
        judged = guard.status
    text = f"guardrail {guard.id}{shadow}: {rule} for {compact_duration(guard.for_s)} (no data: {guard.no_data}) · {judged}"
    if guard.status == GuardrailStatus.PENDING and guard.since is not None:
        text += f" since {clock_text(guard.since)}, {guard.action} in {until_text(countdown(guard, now))}"
    return text


class ZoomScreen(Screen[None]):
    BINDINGS = [Binding("escape,z,q,enter", "dismiss(None)", "Back to the console", id="zoom.close")]
    DEFAULT_CSS = """
    ZoomScreen { layout: vertical; }
    ZoomScreen #head { height: 1; padding: 0 1; margin-top: 1; }
    ZoomScreen #title { width: 1fr; text-style: bold; }
    ZoomScreen #value { width: auto; text-style: bold; }
    ZoomScreen.-breach #value, ZoomScreen.-breach #status { color: $error; text-style: bold reverse; }
    ZoomScreen #status { width: auto; margin-left: 2; text-style: bold reverse; }
    ZoomScreen.-ok #status { display: none; }
    ZoomScreen #chart { height: 1fr; padding: 0 1; }
    ZoomScreen #axis { width: auto; color: $text-muted; text-align: right; margin-right: 1; }
    ZoomScreen Spark { width: 1fr; height: 1fr; }
    ZoomScreen #window { height: 1; padding: 0 1; color: $text-muted; }
    ZoomScreen #guards { height: auto; padding: 0 1; }
    ZoomScreen #hint { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    """

    def __init__(self, pane_id: str) -> None:
        super().__init__()
        self.pane_id = pane_id

    def compose(self) -> ComposeResult:
        yield Banner()
        with Horizontal(id="head"):
            yield Static(id="title", markup=False)
            yield Static(id="value", markup=False)
            yield Static(id="status", markup=False)
        with Horizontal(id="chart"):
            yield Static(id="axis", markup=False)
            with Vertical():
                yield Spark()
        yield Static(id="window", markup=False)
        yield Static(id="guards", markup=False)
        yield Static("esc back to the console · every console key works here (R rolls back)", id="hint", markup=False)

    def on_mount(self) -> None:
        follow_the_app(self, self._show)  # live: the app's snapshot, clock and rollback request, as on the main screen

    def _pane(self, snap: Snapshot | None) -> PaneView | None:
        return next((p for p in snap.panes if p.id == self.pane_id), None) if snap else None

    def _show(self) -> None:
        app = self.app
        assert isinstance(app, ConsoleApp)
        snap = app.snapshot
        pane = self._pane(snap)
        if snap is None or pane is None:
            return
        now = app.now
        shown = shown_status(pane, snap.automation)
        for status in STATUS_WORD:
            self.set_class(shown == status, f"-{status}")
        guards = [g for g in snap.guardrails if g.id in pane.guardrails]
        set_text(self.query_one("#title", Static), f"{pane.title}   {limit_text(pane)}")
        set_text(self.query_one("#value", Static), value_text(pane))
        set_text(self.query_one("#status", Static), acting_text(pane, snap.guardrails, now, snap.automation) or STATUS_WORD.get(shown, ""))
        spark = self.query_one(Spark)
        spark.scale = scale = pane_scale(pane.history, pane.breach, pane.bad_side, pane.unit)
        spark.data = pane.history
        height = spark.size.height
        set_text(self.query_one("#axis", Static), "\n".join(axis_labels(scale, height, pane.unit)))
        # One cell a poll: the chart spans the newest samples that fit its width.
        cells = min(len(pane.history), spark.size.width)
        indent = " " * self.query_one("#axis").outer_size.width
        line = for_window_line(cells, spark.size.width, snap.poll_interval, [g for g in guards if g.action is not GuardrailAction.ALERT] or guards)
        set_text(self.query_one("#window", Static), indent + line)
        lines = [guard_line(g, now) for g in guards] or ["no guardrail watches this pane"]
        if pane.detail:
            lines.append(pane.detail)
        self.query_one("#guards", Static).update(Text("\n".join(lines)))

    def on_resize(self) -> None:
        self.call_after_refresh(self._show)
