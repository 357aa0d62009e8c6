"""Which freezes are in force now, and the step-up blockers they make.

A freeze refuses going forward (a step up, forced or not; a scheduled advance) and never
going back: rollback, pause and step-down do not ask here. The engine's step blockers
call `blockers`, beside the plan's own gates (policy.py) and approvals.
"""

from __future__ import annotations

from collections.abc import Iterable

from warroom.core.freeze import Freeze, FreezeKind


def in_force(now: float, *, vendor: str | None, others: Iterable[Freeze] = ()) -> tuple[Freeze, ...]:
    """The freezes covering `now`: the flag service's own (while it says so) and every other one."""
    found = [Freeze(FreezeKind.VENDOR, vendor)] if vendor else []
    found += [f for f in others if f.covers(now)]
    return tuple(found)


def blockers(freezes: Iterable[Freeze], now: float) -> list[str]:
    """Why a step up is refused: one line a freeze. Even a forced step up is (a freeze is the room's
    decision not to go forward; lifting it is `warroom thaw`, journaled with who)."""
    return [f.blocker(now) for f in freezes]
