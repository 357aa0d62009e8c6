"""Plain timestamped lines for a terminal without a screen: the engine's output, `journal`, `status`."""

from __future__ import annotations

import time

from warroom.core.snapshot import JournalEntry, PaneView, Snapshot
from warroom.core.statuses import PaneStatus
from warroom.core.text import terminal_safe
from warroom.core.units import format_duration, format_value


def say(text: str) -> None:
    """One line of output that quotes plans, servers or people: no escape sequence reaches the terminal."""
    print(terminal_safe(text))


def stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))

def entry_line(entry: JournalEntry) -> str:
    # A journal message quotes plans, scenarios and servers: data, never terminal control.
    return terminal_safe(f"{stamp(entry.ts)} {entry.kind:<18} {entry.message}  [{entry.actor}]")

def _pane_text(pane: PaneView) -> str:
    text = f"{pane.id}={format_value(pane.value, pane.unit)}"
    if pane.status == PaneStatus.STALE and pane.age is not None:
        return f"{text}(stale {format_duration(pane.age)})"  # how old the number kept on screen is
    return text if pane.status == PaneStatus.OK else f"{text}({pane.status})"

def status_line(snap: Snapshot) -> str:
    phase = f"phase {snap.phase.index}/{snap.phase_count} {snap.phase.name}" if snap.phase else f"phase 0/{snap.phase_count}"
    panes = " ".join(_pane_text(p) for p in snap.panes)
    return terminal_safe(f"{stamp(snap.now)} {'status':<18} {snap.state.label} {phase} | {panes}")
