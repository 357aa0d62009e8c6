"""The immutable picture of a rollout that every UI renders.

The engine builds it and publishes it to the store (as JSON, without the journal tail);
every console, `warroom status` and the headless runner compose it back (`from_json`)
with the journal's newest entries and what they know of the engine. So what a screen
shows and what a script sees are the same facts, on every host.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from warroom.core.action_kinds import ActionKind
from warroom.core.flagstate import FlagState
from warroom.core.freeze import Freeze, longest
from warroom.core.guardrail_actions import GuardrailAction
from warroom.core.statuses import ExposureStatus, GuardrailStatus, PaneStatus, RunbookStepStatus
from warroom.core.units import format_duration
from warroom.core.words import Word


class State(Word):
    """The rollout's status, with what each means; the groups a verb, a screen or the engine asks
    about (in flight, exposed, rolling back, over) are written once, here."""

    PENDING = "PENDING", "no phase entered yet (or started again after a rollback): step up enters phase 1"
    RUNNING = "RUNNING", "in a phase: soaking, guardrails judged, stepping up when gates and checklist allow"
    PAUSED = "PAUSED", "in a phase, held by a human, a guardrail, drift or a failed step up: no automatic step"
    COMPLETE = "COMPLETE", "the last phase is done: everyone is on the new code"
    ROLLING_BACK = "ROLLING_BACK", "a rollback began: its flags are being set and read back, its runbook run"
    ROLLED_BACK = "ROLLED_BACK", "the rollback's flags read back off: only retry leaves it"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")

    def in_flight(self, *, acting: bool) -> bool:
        """An engine must be guarding: users may be on the new code and the launch is not over, or
        `acting`, an action is unfinished (a first step up landing under PENDING, a rollback's
        runbook still to run under ROLLED BACK)."""
        return self in (State.RUNNING, State.PAUSED, State.ROLLING_BACK) or acting

    def exposed(self, *, acting: bool) -> bool:
        """Users may be on the new code and no rollback began: a rollback guardrail can still act.
        `acting`: an action is in flight (PENDING with its first step up landing counts)."""
        return self in (State.RUNNING, State.PAUSED, State.COMPLETE) or (self is State.PENDING and acting)

    @property
    def in_rollback(self) -> bool:
        """A rollback began (ROLLING BACK or ROLLED BACK): it owns the flags; nothing steps or pauses."""
        return self in (State.ROLLING_BACK, State.ROLLED_BACK)

    @property
    def may_step(self) -> bool:
        """A step up can be asked for (PENDING or RUNNING): not held, not over, not rolling back."""
        return self in (State.PENDING, State.RUNNING)

    @property
    def in_phase(self) -> bool:
        """A phase is running (RUNNING or PAUSED): it can be paused or resumed, its checklist ticked."""
        return self in (State.RUNNING, State.PAUSED)

    def rollback_in_flight(self, action: ActionKind | None) -> bool:
        """A rollback is being done: ROLLING BACK, or a rollback action (a runbook still running under ROLLED BACK)."""
        return self is State.ROLLING_BACK or action is ActionKind.ROLLBACK

    @property
    def terminal(self) -> bool:
        """The launch is over (COMPLETE or ROLLED BACK): nothing happens by itself any more."""
        return self in (State.COMPLETE, State.ROLLED_BACK)


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    ts: float
    kind: str
    message: str
    actor: str
    action_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ComparisonView:
    """The new cohort against the control, as a cohort guardrail or gate judged it."""

    new: float | None
    control: float | None
    difference: float | None  # new − control
    ratio: float | None  # new / control; None when the control is 0
    n_new: float | None = None  # requests (or samples) in the window, when the plan counts them
    n_control: float | None = None
    p_value: float | None = None  # the test's, when the plan asks for one
    level: float | None = None  # the p-value under which the difference counts as real, at this look
    text: str = ""  # `new 1.80% vs control 0.40% Δ+1.40pp`


@dataclass(frozen=True)
class GuardrailView:
    id: str
    target: str  # pane id or query
    op: str  # above | below
    threshold: float | None  # None: a comparison with no absolute limit, judged before the control is known
    for_s: float
    action: GuardrailAction
    no_data: str
    status: GuardrailStatus
    value: float | None
    since: float | None  # when the current breach (or no-data spell) began
    progress: float  # 0..1 of the `for` window
    detail: str = ""
    unit: str = "count"
    mode: str = "act"  # act | shadow (judged and journaled, never acting nor blocking a step)
    comparison: ComparisonView | None = None
    shown: str = ""  # the judgement in words when a value against a threshold does not say it (comparisons)


@dataclass(frozen=True)
class PaneView:
    id: str
    title: str
    unit: str
    value: float | None
    status: PaneStatus
    detail: str
    warn: float | None
    breach: float | None
    bad_side: str
    history: tuple[float | None, ...]
    last_good_at: float | None
    age: float | None  # seconds since the last good sample
    guardrails: tuple[str, ...] = ()  # ids of guardrails watching this pane
    for_progress: float | None = None  # the most advanced breaching guardrail's progress
    series: tuple[tuple[str, float], ...] = ()
    note: str = ""  # what its guardrails add: `new 1.80% vs control 0.40% Δ+1.40pp`, `not enough traffic (n=12 < 200)`


@dataclass(frozen=True)
class GateView:
    label: str
    value: float | None
    passed: bool | None  # None: no data (counts as not green)
    detail: str = ""
    unit: str = "count"
    op: str = "below"  # the good side of the threshold: above | below
    threshold: float | None = None
    shown: str = ""  # the reading in words, where value against threshold does not say it (comparisons, exposure)


@dataclass(frozen=True)
class ExposureView:
    """The exposure check: the new cohort's observed share of units against the share the plan set."""

    status: ExposureStatus
    planned: float  # the share the flag is set to, 0..1
    observed: float | None  # the new cohort's share of units in the window
    n: float | None  # units in the window, both cohorts
    p_value: float | None
    text: str  # `cohort 24.6% (plan 25%) ✓`, `cohort 0% — is the flag reaching the service? ✗`

    @property
    def blocks(self) -> bool:
        return self.status.blocks


@dataclass(frozen=True)
class ChecklistView:
    id: str
    text: str
    required: bool
    ticked: bool
    by: str = ""


@dataclass(frozen=True)
class PhaseView:
    index: int  # 1-based
    name: str
    exposure: str  # "realtime-features 25%"
    hold: float
    started_at: float | None
    elapsed: float
    soak_left: float
    gates: tuple[GateView, ...]
    checklist: tuple[ChecklistView, ...]
    planned_hold: float | None = None  # the plan's own soak, where a drill shortened it to `hold`


@dataclass(frozen=True)
class FlagView:
    name: str
    desired: FlagState | None
    observed: FlagState | None
    error: str = ""
    drift: bool = False


@dataclass(frozen=True)
class ActionView:
    id: str
    kind: ActionKind
    attempt: int
    last_error: str
    started_at: float
    target: str = ""


@dataclass(frozen=True)
class EngineView:
    """The rollout's engine as a client sees it in the store (filled in by the client, not the engine)."""

    alive: bool  # a lease with a fresh heartbeat (and, on this host, a running process)
    holder: str = ""  # user@host pid N
    host: str = ""
    pid: int = 0
    since: float | None = None  # wall time it took the lease
    heartbeat_age: float | None = None  # seconds since its last heartbeat
    epoch: int = 0
    standbys: tuple[str, ...] = ()  # engines waiting to take over
    log: str = ""  # its log file
    local: str = ""  # alive by its local socket only: why its heartbeat cannot be written (a full disk)

    def label(self) -> str:
        return f"pid {self.pid} on {self.host}"

    def room(self, *, pids: bool = False) -> str:
        """Who drives and who stands by: `alice@bastion-eu (driving) · bob@bastion-us (standby)`."""
        def who(label: str) -> str:  # user@host: on a banner a pid tells the room nothing
            return label if pids else label.rpartition(" pid ")[0] or label

        return " · ".join([f"{who(self.holder)} (driving)"] + [f"{who(s)} (standby)" for s in self.standbys])


@dataclass(frozen=True)
class RunbookStepView:
    name: str
    status: RunbookStepStatus
    summary: str = ""


@dataclass(frozen=True)
class RollbackView:
    """The latest rollback as the journal tells it: why, who, flags confirmed, runbook."""

    reason: str
    by: str  # "auto" or the human's label
    started_at: float
    from_phase: int
    steps: tuple[RunbookStepView, ...]  # every runbook step of the plan, with its outcome so far
    confirmed: str = ""  # the flags as read back once confirmed: "feature off, other off"
    confirmed_at: float | None = None
    outcome: str = ""  # set when the runbook is done
    finished_at: float | None = None


@dataclass(frozen=True)
class UpdatesView:
    """The stakeholder updates the plan promises (`updates:`), as the engine keeps them."""

    owner: str
    promises: str  # the cadence in words: `every 15m while in flight · within 5m of a rollback or breach`
    auto: bool  # the engine posts each one itself
    due: float | None = None  # when the next update must be out (None: none is due)
    reason: str = ""  # why it is due (core.updates.UpdateReason)
    overdue: bool = False  # `due` has passed and it is not published: the owner was reminded
    draft: str = ""  # the drafted text waiting for its owner
    last_published: float | None = None
    last_text: str = ""


@dataclass(frozen=True)
class SourceDownView:
    """A metrics source that does not answer: said once for all its panes, with where and why."""

    name: str
    where: str  # host:port it is asked at; "" for a built-in source
    cause: str  # its error: `cannot connect to 127.0.0.1:9090: connection refused`


@dataclass(frozen=True)
class Snapshot:
    rollout: str
    environment: str
    description: str
    state: State
    phase: PhaseView | None  # None while PENDING
    phase_count: int
    phase_names: tuple[str, ...]
    next_change: str  # what a step up would change: "realtime-features: 25% → 50%"
    panes: tuple[PaneView, ...]
    guardrails: tuple[GuardrailView, ...]
    flags: tuple[FlagView, ...]
    journal: tuple[JournalEntry, ...]  # newest first
    action: ActionView | None
    step_blockers: tuple[str, ...]  # why a step up is refused now; empty: allowed
    paused_reason: str
    drift: bool
    driver: str  # the engine that published it: user@host pid N
    me: str  # the person looking (filled in by the client)
    readonly: bool  # the console looking is read-only (filled in by the client)
    automation: bool  # an engine drives: guardrails are enforced (a client sets it from `engine`)
    insecure: bool  # a source runs with TLS verification off
    now: float
    tick: int
    started_at: float | None = None
    notes: tuple[str, ...] = ()
    force_blockers: tuple[str, ...] = ()  # what even a forced step up cannot override
    freezes: tuple[Freeze, ...] = ()  # the freezes in force: step ups refused, going back allowed
    zone: str = "UTC"  # the plan's schedule zone: how clock times are shown
    next_scheduled: str = ""  # the next scheduled step: `phase 2 Half 50% at Fri 27 Nov 15:00 CET (in 1h)`
    awaiting: str = ""  # the sign-off the next step waits for: `awaiting security (carol|dave) 04:12 → on timeout: hold`
    engine: EngineView | None = None  # None: as the engine itself built it
    exposure: ExposureView | None = None  # None: the plan has no exposure check
    phase_exposures: tuple[str, ...] = ()  # each phase's exposure, short: "25%", "50%/100%"
    rollback: RollbackView | None = None  # the latest rollback, while ROLLING BACK or ROLLED BACK
    launch_flags: tuple[str, ...] = ()  # the flags the phases move: what exposure is (a flag on throughout is not)
    sources_down: tuple[SourceDownView, ...] = ()
    poll_interval: float = 0.0
    updates: UpdatesView | None = None  # None: the plan promises no stakeholder updates
    # When the flags shown were read back (engine clock); older than a poll: the flag service is slow to answer.
    flags_read_at: float | None = None
    # For a screen that moves its clock between snapshots (and to tell how old a published
    # snapshot is): the engine clock `now` was read at wall time `wall`, and it runs
    # `clock_rate` seconds per wall second (0: virtual time, which moves only when driven).
    wall: float = 0.0
    clock_rate: float = 1.0

    def freeze_banner(self, now: float) -> str:
        """`FREEZE until 18:00 (Black Friday) · rollback allowed` for the longest freeze in force, in the plan's zone; "" without one."""
        frozen = longest(self.freezes)
        return frozen.banner(now, ZoneInfo(self.zone)) if frozen is not None else ""

    def flags_age(self) -> str:
        """`read 12s ago` when the flags shown were read back more than two polls ago (the flag service is slow
        to answer: they may have changed since); "" while they are current."""
        if self.flags_read_at is None or self.now - self.flags_read_at <= 2 * self.poll_interval:
            return ""
        return f"read {format_duration(self.now - self.flags_read_at)} ago"

    @property
    def can_step(self) -> bool:
        return not self.readonly and not self.step_blockers

    @property
    def in_flight(self) -> bool:
        """An engine must be guarding: users are exposed and the launch is not over, or an action
        is unfinished (a rollback's runbook after its flags read back off)."""
        return self.state.in_flight(acting=self.action is not None)

    @property
    def exposed(self) -> bool:
        """Users may be on the new code and no rollback began: a rollback guardrail can still act."""
        return self.state.exposed(acting=self.action is not None)

    @property
    def rollback_in_flight(self) -> bool:
        return self.state.rollback_in_flight(self.action.kind if self.action is not None else None)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        """The Snapshot back from `to_json` (through JSON), every nested view typed again."""
        snap: Snapshot = _decode(cls, data)
        return snap


def _decode(kind: Any, value: Any) -> Any:
    """A value of type `kind` from its JSON form (dataclasses, tuples, optionals, enums, FlagState)."""
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        inner = [k for k in typing.get_args(kind) if k is not type(None)]
        return _decode(inner[0], value) if len(inner) == 1 else value
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            if _plain(args[0]):  # a pane's history: 240 numbers, eight panes, every snapshot a console reads
                return tuple(value)
            return tuple(_decode(args[0], v) for v in value)
        return tuple(_decode(a, v) for a, v in zip(args, value, strict=True))
    if kind is FlagState:
        return FlagState.from_json(value)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return kind(**{name: _decode(hint, value[name]) for name, hint in _fields(kind) if name in value})
    return value


@functools.cache
def _plain(kind: Any) -> bool:
    """Whether JSON already gives values of `kind` as they are (numbers, strings, None)."""
    union = typing.get_origin(kind) in (typing.Union, types.UnionType)
    return all(k in (int, float, str, bool, type(None)) for k in (typing.get_args(kind) if union else (kind,)))


@functools.cache
def _fields(kind: type) -> tuple[tuple[str, Any], ...]:
    hints = typing.get_type_hints(kind)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(kind))


def why(entry: JournalEntry) -> str:
    """The numbers behind an automatic action: query, value, threshold, window."""
    cause = entry.data.get("cause") or (entry.data if "threshold" in entry.data else {})
    comparison = (cause or {}).get("comparison")
    if comparison:  # a cohort guardrail: both cohorts side by side say more than one number and a limit
        return f"{cause.get('guardrail', '')}: {comparison['text']} for {cause.get('for', 0):g}s — query {cause.get('query', '')}"
    if not cause or cause.get("threshold") is None:
        return ""
    value = "no data" if cause.get("value") is None else f"{cause['value']:g}"
    return f"{cause.get('guardrail', '')}: {value} {cause.get('op', '')} {cause['threshold']:g} for {cause.get('for', 0):g}s — query {cause.get('query', '')}"
