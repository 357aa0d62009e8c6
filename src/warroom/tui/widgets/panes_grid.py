"""The plan's panes in a grid that fits 80×24 and uses the room at 200×60."""

from __future__ import annotations

import math

from textual import events
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.widget import Widget

from warroom.core.snapshot import Snapshot
from warroom.tui.widgets.metric_pane import MetricPane

MIN_PANE_WIDTH = 18  # "Error rate 0.05%" and "BREACH rollback 4s" still fit
MAX_COLUMNS = 4


def columns_for(count: int, width: int) -> int:
    """As many columns as fit, balanced so the last row is not a lone pane."""
    fit = max(1, min(MAX_COLUMNS, width // MIN_PANE_WIDTH, count))
    rows = math.ceil(count / fit) if count else 1
    return max(1, math.ceil(count / rows)) if count else 1


class PanesGrid(Widget):
    DEFAULT_CSS = """
    PanesGrid { layout: grid; grid-size: 4; grid-gutter: 0 1; height: auto; grid-rows: auto; }
    """

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)  # parts update themselves
    now: reactive[float] = reactive(0.0, repaint=False)

    def __init__(self, first: Snapshot | None = None) -> None:
        super().__init__()
        self._first = first  # the panes are born with the first frame when it is known before the screen opens

    def compose(self) -> ComposeResult:
        snap = self._first
        if snap is not None:
            yield from (MetricPane(view, snap.guardrails, snap.poll_interval, snap.now, snap.automation) for view in snap.panes)

    def on_mount(self) -> None:
        self._fit(self.app.size.width)

    async def watch_snapshot(self, snap: Snapshot | None) -> None:
        if snap is None:
            return
        panes = list(self.query(MetricPane))
        if [p.pane.id for p in panes if p.pane] != [v.id for v in snap.panes]:
            # The plan's panes are fixed for a run; (re)build them the first time.
            await self.remove_children()
            await self.mount_all(MetricPane(view, snap.guardrails, snap.poll_interval, self.now, snap.automation) for view in snap.panes)
            self._fit(self.size.width)
            return
        for widget, view in zip(panes, snap.panes, strict=True):
            widget.show(view, snap.guardrails, snap.poll_interval, self.now, snap.automation)

    def watch_now(self, now: float) -> None:
        for pane in self.query(MetricPane):
            pane.tick(now)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width)

    def _fit(self, width: int) -> None:
        if width:
            self.styles.grid_size_columns = columns_for(len(self.children), width)
