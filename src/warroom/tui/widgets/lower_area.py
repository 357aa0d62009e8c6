"""The checklist (or, after a rollback, what happened), the flags and the journal.

The checklist gets the rows the journal does not need: it grows to its length, leaving
the journal at least a few lines. From 160 columns the three stand side by side.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.reactive import reactive

from warroom.core.snapshot import Snapshot
from warroom.tui.refresh import changed
from warroom.tui.widgets.checklist import Checklist
from warroom.tui.widgets.flags_table import FlagsTable
from warroom.tui.widgets.rollback_panel import RollbackPanel
from warroom.tui.widgets.timeline import Timeline

JOURNAL_MIN = 3  # lines the journal keeps however long the checklist


class LowerArea(Vertical):
    DEFAULT_CSS = """
    LowerArea { height: 1fr; }
    LowerArea #middle { height: auto; }
    LowerArea #middle > Checklist, LowerArea #middle > RollbackPanel { width: 1fr; height: 100%; }
    LowerArea #middle > FlagsTable { margin-left: 1; height: 100%; }
    LowerArea > Timeline { height: 1fr; margin-top: 1; }
    LowerArea RollbackPanel, LowerArea.-rollback Checklist { display: none; }
    LowerArea.-rollback RollbackPanel { display: block; }
    """

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)
    retry_key: reactive[str] = reactive("r")

    def compose(self) -> ComposeResult:
        with Horizontal(id="middle"):
            yield Checklist().data_bind(LowerArea.snapshot)
            yield FlagsTable().data_bind(LowerArea.snapshot)
        yield Timeline().data_bind(LowerArea.snapshot)

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        if snap is None:
            return
        busy = snap.state.in_rollback
        self.set_class(busy, "-rollback")
        panels = list(self.query(RollbackPanel))
        if busy and not panels:  # built the first time a rollback shows: most consoles never need it
            panel = RollbackPanel()
            panel.set_reactive(RollbackPanel.retry_key, self.retry_key)
            self.query_one("#middle").mount(panel, before=self.query_one(FlagsTable))
            panels = [panel]
        for panel in panels:
            panel.snapshot, panel.retry_key = snap, self.retry_key
        # What can change how many lines the middle row needs: a gate's reading too (one a character longer can
        # wrap; a fit made while it did stayed a row too tall once it shrank). Same height, no relayout.
        phase = snap.phase and (snap.phase.index, snap.phase.gates, len(snap.phase.checklist))
        flags = tuple((f.error, f.drift, f.observed, f.desired) for f in snap.flags)
        if changed(self, (busy, phase, bool(snap.next_change), flags, snap.rollback, snap.notes, snap.action is None)):
            self.call_after_refresh(self._fit)

    def on_resize(self) -> None:
        self._fit()

    def on_checklist_grown(self) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        """The middle row as tall as its longest part, but never taking the journal's last lines."""
        middle = self.query_one("#middle")
        if self.screen.has_class("-three"):
            middle.styles.height = "100%"
            return
        width = self.size.width
        # Each part's width as the row will lay it out (the flags as wide as their columns, padding 2 and
        # margin 1; the checklist or rollback panel the rest, padding 2), not as it is laid out now: a
        # width from before the row settled wraps the checklist's gates differently.
        flags = self.query_one(FlagsTable)
        flags_width = flags.get_content_width(Size(width, 0), self.app.size)
        shown = [w for w in middle.children if w.display]
        wanted = max((w.get_content_height(Size(width, 0), self.app.size, flags_width if w is flags else max(1, width - flags_width - 5))
                      for w in shown), default=1)
        middle.styles.height = max(1, min(wanted, self.size.height - JOURNAL_MIN - 1))  # 1: the journal's margin
