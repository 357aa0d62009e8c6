"""The console's clock: the engine's time between two snapshots.

The banner clock, time in phase and every countdown move each second on their own, so a
frozen console can be told from a quiet one even with a 5 s poll. They are worked out
from the newest snapshot's timestamps, never by asking the engine.
"""

from __future__ import annotations

import time

from warroom.core.snapshot import Snapshot


def wall_clock() -> float:
    """The wall clock the screen moves by (one place: a screenshot test holds it still)."""
    return time.time()


def clock_rate(snap: Snapshot) -> float:
    """Seconds the screen's clock moves per wall second. A virtual clock (rate 0) moves only when
    its engine is driven; with no engine alive, the ages of the numbers on screen follow the
    wall clock, whatever clock the engine ran on."""
    return snap.clock_rate if snap.automation else 1.0


def engine_now(snap: Snapshot, wall: float | None = None) -> float:
    """The engine clock's time now: the snapshot's `now`, moved on by the wall time since."""
    wall = wall_clock() if wall is None else wall
    return snap.now + max(0.0, wall - snap.wall) * clock_rate(snap) if snap.wall else snap.now


def clock_text(ts: float) -> str:
    # UTC: the team on a call shares one clock, and the journal is in UTC too.
    return time.strftime("%H:%M:%SZ", time.gmtime(ts))


def compact_duration(seconds: float) -> str:
    """A duration in a few cells, floored: 45s, 12m, 1h, 1h30m (precise enough for a strip or a label)."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
