"""What a guardrail does once its breach held for its window (the plan's `action:`)."""

from __future__ import annotations

from warroom.core.words import Word


class GuardrailAction(Word):
    ROLLBACK = "rollback", "roll the launch back: flags off, runbook run"
    PAUSE = "pause", "pause the rollout: no step up until a human resumes"
    ALERT = "alert", "tell the room, change nothing"

    @property
    def done(self) -> str:
        """In a sentence, done: `would have rolled back`."""
        return {GuardrailAction.ROLLBACK: "rolled back", GuardrailAction.PAUSE: "paused", GuardrailAction.ALERT: "alerted"}[self]

    @property
    def phrase(self) -> str:
        """In a sentence, to do: `WOULD roll back`."""
        return {GuardrailAction.ROLLBACK: "roll back", GuardrailAction.PAUSE: "pause", GuardrailAction.ALERT: "alert"}[self]
