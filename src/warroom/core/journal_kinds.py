"""Every kind of journal entry, in one catalogue: what it means, whether the war room's
channel hears of it, and how a screen colours it.

The journal stores the kind as text (`rollback.intent`), so a `Kind` compares equal to
the stored string; a kind written by a newer warroom still reads as text. Notifications,
the report, the drill score card and the console's timeline all take their lists from
here, so a new kind is added in one place.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    meaning: str
    notifies: bool  # the plan's `notify` targets get a message (see notify.py)
    tone: str  # bad | warn | good | "" : how a timeline colours it
    decision: str  # a decision by someone, by its short name ("" for other entries)

    def __new__(cls, value: str, meaning: str, notifies: bool = False, tone: str = "", decision: str = "") -> Kind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        member.notifies = notifies
        member.tone = tone
        member.decision = decision
        return member

    # ---------------------------------------------------------------- the rollout
    ROLLOUT_INIT = "rollout.init", "a new rollout: its state was initialised"
    STEP_INTENT = "step.intent", "a step up is about to change flags (write-ahead: before any write)", False, "good", "step up"
    STEP_FORCED = "step.forced", "a step up forced past soak, gates or checklist, with its reason", True, "warn", "forced step up"
    STEP_ATTEMPT = "step.attempt", "a step up's flag write failed (or a read-back confirmed it); numbered", True, "warn"
    STEP_OUTCOME = "step.outcome", "a step up ended: the new phase, failed and paused, or abandoned", True, "good"
    STEP_LATE_WRITE = "step.late_write", "a write of an interrupted step up landed after a takeover: set back, not drift", True, "warn"
    ROLLOUT_COMPLETE = "rollout.complete", "the last phase is done", True, "good", "complete"
    PAUSE = "pause", "automation and step ups held, by a human or a guardrail", True, "warn", "pause"
    RESUME = "resume", "a pause lifted", True, "good", "resume"
    RETRY = "retry", "ROLLED BACK left deliberately: back to phase 0", True, "", "retry"
    CHECKLIST_TICK = "checklist.tick", "a checklist item ticked"
    CHECKLIST_UNTICK = "checklist.untick", "a checklist item unticked"

    # ---------------------------------------------------------------- sign-offs (hash-chained: core/decision_chain.py)
    APPROVAL_REQUESTED = "approval.requested", "a step up waits for sign-off: which roles, how many people, until when", True, "warn"
    APPROVAL_GIVEN = "approval.given", "a person (as proven) approved a requested step, with the guardrail values they saw", True, "good", "approve"
    APPROVAL_REJECTED = "approval.rejected", "a person (as proven) rejected a requested step: it does not happen", True, "bad", "reject"
    APPROVAL_GRANTED = "approval.granted", "every quorum is met: the step may happen, once", True, "good"
    APPROVAL_TIMED_OUT = "approval.timed_out", "nobody answered in time: the plan's on_timeout applies (hold, abort, rollback)", True, "warn"
    APPROVAL_LAPSED = "approval.lapsed", "a sign-off no longer applies: the plan or the rollout changed under it", True, "warn"
    GO_NO_GO = "go_no_go", "the recorded GO or NO-GO before the first exposure, criterion by criterion", True, "warn", "go/no-go"

    # ---------------------------------------------------------------- rolling back
    ROLLBACK_INTENT = "rollback.intent", "a rollback begins (write-ahead: before any flag is touched)", True, "bad", "rollback"
    ROLLBACK_ATTEMPT = "rollback.attempt", "a rollback's flag write failed (or a read-back confirmed it); numbered", True, "bad"
    ROLLBACK_CONFIRMED = "rollback.confirmed", "every rolled-back flag read back off", True, "bad"
    ROLLBACK_STEP = "rollback.step", "one runbook step ran (or was journaled as a dry run)", False, "bad"
    ROLLBACK_STEP_STOPPED = "rollback.step_stopped", "a runbook step left running by a gone engine was stopped before it runs again", False, "bad"
    ROLLBACK_OUTCOME = "rollback.outcome", "a rollback finished, runbook included", True, "bad"
    ROLLBACK_RESUME = "rollback.resume", "a rollback left unfinished by a gone process is finished", False, "bad"
    ROLLBACK_REASSERT = "rollback.reassert", "a flag read back exposed after a rollback: set off again", False, "bad"
    FLAG_FALLBACK = ("flag.fallback", "the flag service refused switching a flag off (its maintenance mode): a write it still "
                     "accepts took the exposure to 0, confirmed by read-back", True, "warn")

    # ---------------------------------------------------------------- what is watched
    GUARDRAIL_BREACH = "guardrail.breach", "a guardrail began breaching; it acts if this holds for its window", False, "warn"
    GUARDRAIL_CLEAR = "guardrail.clear", "a breaching guardrail is back within its threshold", False, "warn"
    GUARDRAIL_ALERT = "guardrail.alert", "a guardrail with `action: alert` held its window", True, "warn"
    GUARDRAIL_FIRED = "guardrail.fired", "a guardrail held its window where its action changes nothing", True, "warn"
    GUARDRAIL_SHADOW = "guardrail.shadow", "a guardrail in `mode: shadow` held its window: what it would have done", True, "warn"
    GUARDRAIL_EVIDENCE = "guardrail.evidence", "too little traffic for a guardrail's verdict: its `no_data` applies", False, "warn"
    EXPOSURE_MISMATCH = "exposure.mismatch", "the new cohort's share of units is not the flag's: step ups blocked", True, "bad"
    EXPOSURE_OK = "exposure.ok", "the exposure check matches again", True, "good"
    DRIFT_DETECTED = "drift.detected", "a flag reads other than warroom set it: automation paused", True, "bad"
    DRIFT_ACK = "drift.ack", "a human accepted the observed flags", True, "bad", "ack drift"
    SOURCE_ERROR = "source.error", "a metrics source stopped answering", True, "warn"
    SOURCE_RECOVERED = "source.recovered", "a metrics source answers again", True, "warn"

    # ---------------------------------------------------------------- when a change may happen
    SCHEDULE_FIRED = "schedule.fired", "a scheduled step's time came and nothing blocks it: the step up is asked", True, "good"
    SCHEDULE_HELD = "schedule.held", "a scheduled step's time came but something blocks it: it holds, saying why", True, "warn"
    SCHEDULE_MISSED = "schedule.missed", "a scheduled step came while no engine looked: skipped or run late, by the plan's policy", True, "warn"
    FREEZE_BEGIN = "freeze.begin", "a freeze is in force (ad hoc, stop-the-line, calendar, the flag service's): step ups refused", True, "warn"
    FREEZE_LIFTED = "freeze.lifted", "a freeze was lifted by a human (`warroom thaw`), named", True, "warn", "thaw"
    FREEZE_CALENDAR = "freeze.calendar", "the freeze calendar cannot be read fresh (what stands in, how old), or can again", True, "warn"
    FREEZE_END = "freeze.end", "a freeze ran out (its time passed, or the flag service takes changes again)", True, "warn"

    # ---------------------------------------------------------------- who runs it
    ENGINE_START = "engine.start", "an engine took the lease and drives the rollout"
    ENGINE_STOP = "engine.stop", "the driving engine stopped and gave the lease up"
    ENGINE_LEFT = "engine.left", "the engine stopped with the rollout in flight: nothing enforces its guardrails now", True, "bad"
    ENGINE_LOST = "engine.lost", "an engine took over from one that vanished (killed, frozen, its host gone)", True, "bad"
    COMMAND_EXPIRED = "command.expired", "a command waited too long for an engine and was not run", False, "warn"
    COMMAND_LOCAL = ("command.local", "a rollback or pause reached the engine over its local socket (the store could not take it), "
                     "with the sender's kernel-proven identity", False, "warn")
    JOURNAL_UNWRITABLE = "journal.unwritable", "the store cannot be written (a full disk): the engine guards from memory", True, "bad"
    JOURNAL_RECOVERED = "journal.recovered", "the store takes writes again: what was held in memory is in the journal", True, "warn"

    # ---------------------------------------------------------------- notifications
    NOTIFY_FAILED = "notify.failed", "a notification could not be delivered (attempt, retry or give up)"
    NOTIFY_DELIVERED = "notify.delivered", "a notification got through on a later attempt"
    NOTIFY_DROPPED = "notify.dropped", "notifications left undelivered at exit"

    # ---------------------------------------------------------------- stakeholder updates (plan `updates:`)
    UPDATE_DRAFTED = "update.drafted", "a stakeholder update came due and was drafted from the journal, for its owner to approve"
    UPDATE_OVERDUE = "update.overdue", "a promised stakeholder update is overdue: its owner is reminded", True, "warn"
    UPDATE_PUBLISHED = "update.published", "a stakeholder update was approved, archived and posted to the notify targets", True, "good"

    # ---------------------------------------------------------------- drills
    DRILL_START = "drill.start", "a drill began: its scenario", True
    DRILL_FAULT = "drill.fault", "a drill's fault began or ended"
    DRILL_SCORE = "drill.score", "a drill's score card", True


# A failed runbook step is told to the channel as a failed action attempt (rollback.step
# with `ok: false`); notify.py gives it this name so a target can ask for it.
ROLLBACK_STEP_FAILED = "rollback.step.failed"

# The entries whose hashes chain (`warroom verify PLAN` detects an edited or deleted one).
CHAINED: frozenset[str] = frozenset({Kind.APPROVAL_REQUESTED, Kind.APPROVAL_GIVEN, Kind.APPROVAL_REJECTED, Kind.APPROVAL_GRANTED,
                                     Kind.APPROVAL_TIMED_OUT, Kind.APPROVAL_LAPSED, Kind.GO_NO_GO})

# The decisions someone took (a human or automation), by their short name.
DECISIONS: dict[str, str] = {k.value: k.decision for k in Kind if k.decision}


_BY_TEXT: dict[str, Kind] = {k.value: k for k in Kind}


def known(kind: str) -> Kind | None:
    """The catalogue's entry for a stored kind; None for one it does not know (a newer warroom's)."""
    return _BY_TEXT.get(kind)
