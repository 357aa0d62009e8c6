"""The kinds of write-ahead action: what the engine commits before it touches a flag."""

from __future__ import annotations

from warroom.core.words import Word


class ActionKind(Word):
    STEP_UP = "step_up", "a step up to the next phase: its flags written until read back, else paused"
    ROLLBACK = "rollback", "a rollback: its flags written until read back (never given up), then its runbook"

    @property
    def verb(self) -> str:
        """How its journal entries and messages name it: `step`, `rollback` (`step.attempt`, `rollback attempt 2`)."""
        return "step" if self is ActionKind.STEP_UP else "rollback"
