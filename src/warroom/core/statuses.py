"""How each thing a screen shows stands: a guardrail, a pane, the exposure check, a runbook step.

Each status with its meaning; the groups screens, the engine and drills ask about
(breaching, silent, blocking a step up) are written once, on the status.
"""

from __future__ import annotations

from warroom.core.words import Word


class GuardrailStatus(Word):
    OK = "ok", "within its threshold"
    PENDING = "pending", "breaching, its `for` window not yet met: it acts if this holds"
    BREACH = "breach", "breaching for its whole `for` window: it acted (or, in shadow, would have)"
    NODATA = "nodata", "no data (or too little traffic for a verdict), and its `no_data: hold` blocks step ups"
    IGNORED = "ignored", "no verdict, by its `no_data: ignore` or because there is nothing to compare yet"

    @property
    def breaching(self) -> bool:
        """Over its threshold now, whether or not its window is met."""
        return self in (GuardrailStatus.PENDING, GuardrailStatus.BREACH)

    @property
    def alarming(self) -> bool:
        """Something a responder must look at: breaching, or blind."""
        return self.breaching or self is GuardrailStatus.NODATA


class PaneStatus(Word):
    OK = "ok", "a fresh value on the good side of its limits"
    WARN = "warn", "past its warn limit"
    BREACH = "breach", "past its breach limit, or a guardrail watching it is breaching"
    STALE = "stale", "the last good value is old: the source stopped answering, or answers slowly"
    NODATA = "nodata", "no good value yet"

    @property
    def silent(self) -> bool:
        """No fresh number: the pane shows an old one or none."""
        return self in (PaneStatus.STALE, PaneStatus.NODATA)


class ExposureStatus(Word):
    OK = "ok", "the new cohort's share of units matches the flag's"
    MISMATCH = "mismatch", "the split differs from the flag's share (sample-ratio mismatch)"
    NONE = "none", "no unit on the new code: is the flag reaching the service?"
    LOW = "low", "too few units in the window to check the split"
    NODATA = "nodata", "a cohort's units could not be read"
    SETTLING = "settling", "too soon after the step to check"
    IDLE = "idle", "no cohort by plan yet: nothing to check"

    @property
    def blocks(self) -> bool:
        """A step up waits for the check (anything but a match, or nothing to check)."""
        return self not in (ExposureStatus.OK, ExposureStatus.IDLE)


class RunbookStepStatus(Word):
    PENDING = "pending", "not run yet"
    OK = "ok", "ran and succeeded"
    FAILED = "failed", "ran and failed (the rollback went on)"
    DRY_RUN = "dry-run", "journaled, not run (a drill)"
