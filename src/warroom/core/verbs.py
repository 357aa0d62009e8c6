"""The commands a console, a verb or a drill's responder sends the engine through the store."""

from __future__ import annotations

from warroom.core.words import Word


class Verb(Word):
    STEP = "step", "step up to the next phase (with `force` and a `reason`, past soak, gates and checklist)"
    PAUSE = "pause", "hold automation and step ups"
    RESUME = "resume", "lift a pause"
    ROLLBACK = "rollback", "roll back now; never refused for a schedule, a freeze or an approval, never expires"
    RETRY = "retry", "leave ROLLED BACK deliberately: back to phase 0"
    TICK = "tick", "tick (or, with `undo`, untick) a checklist item of the current phase"
    ACK = "ack", "accept the observed flags as they are (drift), and let automation go on"
    UPDATE = "update", "publish the stakeholder update, approved by its sender: the engine's draft, or the `text` given"
    APPROVE = "approve", "sign off the step up that awaits approval, as the person the kernel or database proves (`note`)"
    REJECT = "reject", "refuse the step up that awaits approval, with a `note` saying why: it does not happen"
    SHUTDOWN = "shutdown", "stop the engine (`warroom down`); refused while a rollback is in flight unless forced"

    @property
    def never_expires(self) -> bool:
        """Run however long it waited for an engine: going back is late rather than never."""
        return self is Verb.ROLLBACK
