"""The journal's latest entries, newest first: when, who, what and why.

Rows to spare go to the newest entries' whole text (wrapped under their message) rather
than staying blank beside lines cut short. A flag write failing again and again is one
line with its count, not a screenful of the same failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive

from warroom.core.identity import UNPROVEN
from warroom.core.journal_kinds import Kind, known
from warroom.core.snapshot import JournalEntry, Snapshot
from warroom.tui.parts import Parts
from warroom.tui.refresh import changed

RETRIES = (Kind.ROLLBACK_ATTEMPT, Kind.STEP_ATTEMPT)  # said again at every failed attempt of one action
PREFIX = 16  # "08:00:13 alice  ": time and who, before the message


def who(entry: JournalEntry) -> str:
    """The user alone: the full label (host, tty) is in the journal itself. A name the engine took on the
    sender's word alone (a SQLite row nothing proved) is marked `?`, and its message says so."""
    actor = entry.data.get("actor") or {}
    if actor.get("automatic"):
        return "auto"
    user = actor.get("user") or entry.actor.split()[0]
    return f"{user[:5]}?" if actor.get("unproven") else user


def unproven(entry: JournalEntry) -> bool:
    return bool((entry.data.get("actor") or {}).get("unproven"))


@dataclass(frozen=True)
class Line:
    """One journal line as shown: the newest entry of a run of retries stands for them all."""

    entry: JournalEntry
    count: int = 1

    @property
    def message(self) -> str:
        text = self.entry.message
        if unproven(self.entry) and UNPROVEN not in text:
            text = f"{UNPROVEN} {text}"
        return f"×{self.count} {text}" if self.count > 1 else text


def coalesce(entries: tuple[JournalEntry, ...]) -> list[Line]:
    """Consecutive failed attempts of one action as one line with their count."""
    lines: list[Line] = []
    for entry in entries:
        last = lines[-1] if lines else None
        if (last is not None and entry.kind in RETRIES and last.entry.kind == entry.kind
                and entry.action_id is not None and last.entry.action_id == entry.action_id):
            lines[-1] = Line(last.entry, last.count + 1)
        else:
            lines.append(Line(entry))
    return lines


def heights(lengths: list[int], width: int, rows: int) -> list[int]:
    """Rows for each line (newest first): one each while they fit, then the spare rows to the
    newest ones' whole text."""
    room = max(1, width - PREFIX)
    shown = lengths[:max(0, rows)]
    out = [1] * len(shown)
    spare = rows - len(shown)
    for i, length in enumerate(shown):
        if spare <= 0:
            break
        more = min(spare, max(0, -(-length // room) - 1))
        out[i] += more
        spare -= more
    return out


class Timeline(Parts):
    PARTS = {"time": "$text-muted", "who": "$primary", "bad": "$error bold", "warn": "$warning", "good": "$success"}
    DEFAULT_CSS = """
    Timeline { height: 1fr; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        if snap is not None and changed(self, tuple(e.seq for e in snap.journal)):
            self.refresh()

    def render(self) -> Text:
        snap = self.snapshot
        if snap is None:
            return Text("")
        width, rows = self.content_region.width, max(1, self.content_region.height)
        lines = coalesce(snap.journal)
        out: list[Text] = []
        for line, height in zip(lines, heights([len(l.message) for l in lines], width, rows), strict=False):  # the rows hold the newest
            entry = line.entry
            kind = entry_kind.tone if (entry_kind := known(entry.kind)) else ""
            style = self.part(kind) if kind else ""
            head = Text.assemble(
                (time.strftime("%H:%M:%S ", time.gmtime(entry.ts)), self.part("time")),
                (f"{who(entry):<6.6} ", self.part("who")),
            )
            parts = Text(line.message, style=style).wrap(self.app.console, max(1, width - PREFIX)) if height > 1 else [Text(line.message, style=style)]
            for index, part in enumerate(parts[:height]):
                row = Text.assemble(head if index == 0 else " " * PREFIX, part, no_wrap=True, overflow="ellipsis")
                if index == height - 1 and len(parts) > height:
                    row.append("…")
                out.append(row)
        return Text("\n").join(out)
