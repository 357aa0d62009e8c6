"""The journal's latest entries, newest first: when, who, what and why."""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from warroom.core.journal_kinds import known
from warroom.core.snapshot import JournalEntry, Snapshot
from warroom.tui.refresh import changed


def who(entry: JournalEntry) -> str:
    """The user alone: the full label (host, tty) is in the journal itself."""
    actor = entry.data.get("actor") or {}
    if actor.get("automatic"):
        return "auto"
    return actor.get("user") or entry.actor.split()[0]


class Timeline(Widget):
    COMPONENT_CLASSES = {"timeline--time", "timeline--who", "timeline--bad", "timeline--warn", "timeline--good"}
    DEFAULT_CSS = """
    Timeline { height: 1fr; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    Timeline > .timeline--time { color: $text-muted; }
    Timeline > .timeline--who { color: $primary; }
    Timeline > .timeline--bad { color: $error; text-style: bold; }
    Timeline > .timeline--warn { color: $warning; }
    Timeline > .timeline--good { color: $success; }
    """

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        if snap is not None and changed(self, tuple(e.seq for e in snap.journal)):
            self.refresh()

    def render(self) -> Text:
        snap = self.snapshot
        if snap is None:
            return Text("")
        lines = []
        for entry in snap.journal[: max(1, self.size.height)]:
            kind = entry_kind.tone if (entry_kind := known(entry.kind)) else ""
            line = Text.assemble(
                (time.strftime("%H:%M:%S ", time.gmtime(entry.ts)), self.get_component_rich_style("timeline--time")),
                (f"{who(entry):<6.6} ", self.get_component_rich_style("timeline--who")),
                (entry.message, self.get_component_rich_style(f"timeline--{kind}") if kind else ""),
                no_wrap=True,
                overflow="ellipsis",
            )
            lines.append(line)
        return Text("\n").join(lines)
