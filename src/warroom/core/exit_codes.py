"""Every exit code of `warroom`, with what it means (the README's table): one catalogue, so a
verb, the engine process and a drill answer a script the same way."""

from __future__ import annotations

from enum import IntEnum

from warroom.core.snapshot import Snapshot, State


class Exit(IntEnum):
    meaning: str

    def __new__(cls, value: int, meaning: str) -> Exit:
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    OK = 0, "ok: PENDING, RUNNING or COMPLETE; a command that did what it said"
    PROBLEM = 1, "a plan, state or secret problem (the message names file, line and field)"
    USAGE = 2, "usage error"
    PAUSED = 3, "PAUSED (status, run)"
    ROLLING_BACK = 4, "ROLLING BACK (status, run; step: a rollback took the step up over)"
    ROLLED_BACK = 5, "ROLLED BACK (status, run; step: a rollback took the step up over)"
    REFUSED = 6, "the command was refused now (the message says why)"
    CHECK = 7, "check found a problem with a source or the flag provider"
    DRILL_FAILED = 8, "a drill's score card did not pass"
    NO_ENGINE = 9, "NO ENGINE: the rollout is in flight (or an action unfinished) and no engine runs it (status)"
    FENCED = 10, "the engine was fenced: another engine took its lease over (engine, run --headless)"

    @classmethod
    def of_state(cls, state: State) -> Exit:
        """What `status` and `run` exit with for a rollout in `state` (its engine alive)."""
        return {State.PAUSED: cls.PAUSED, State.ROLLING_BACK: cls.ROLLING_BACK, State.ROLLED_BACK: cls.ROLLED_BACK}.get(state, cls.OK)

    @classmethod
    def of_status(cls, snap: Snapshot, *, engine_alive: bool) -> Exit:
        """What `status` exits with: NO ENGINE when the launch is in flight and nothing guards it, else the state's."""
        if not engine_alive and snap.in_flight:
            return cls.NO_ENGINE
        return cls.of_state(snap.state)
