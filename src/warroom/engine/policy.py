"""What the plan allows now: step blockers, gates, the next change, drift.

Pure judgement over the plan, the rollout state, this tick's readings and the flags as
read back; nothing here writes or journals.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from warroom.core.flagstate import FlagState
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import ExposureView, GateView, GuardrailView, State
from warroom.core.statuses import ExposureStatus, GuardrailStatus
from warroom.core.units import format_duration, format_value
from warroom.engine.cohorts import ConditionQueries, judge
from warroom.engine.exposure import Exposure
from warroom.engine.polling import FlagReader, Poller
from warroom.engine.state import RolloutState
from warroom.plan.flagsetting import FlagSetting
from warroom.plan.model import Plan


def flag_state(setting: FlagSetting) -> FlagState:
    return setting.as_state()


def exposure_label(flags: Mapping[str, FlagState]) -> str:
    return ", ".join(f"{name} {state.label()}" for name, state in flags.items())


def short_exposure(flags: Mapping[str, FlagState]) -> str:
    """A phase's exposure in a few cells: "25%", or "50%/100%" when its flags differ."""
    return "/".join(dict.fromkeys(state.label() for state in flags.values())) or "no flags"


class Policy:
    def __init__(self, plan: Plan, poller: Poller, flags: FlagReader, exposure: Exposure | None):
        self.plan = plan
        self.poller = poller
        self.flags = flags
        self.exposure = exposure
        self.exposure_view: ExposureView | None = None  # this tick's exposure check (None: the plan has none)
        # Whose percentage says how many users are on the new code (what a comparison can judge).
        self.cohort_flag = exposure.flag if exposure else (plan.driving_flag() or "")
        # Every gate's queries are asked every tick, so a gate is green or red the moment its phase begins.
        self.gate_queries = [[ConditionQueries.of(plan, gate, poller.pane_keys.__getitem__) for gate in phase.gates] for phase in plan.phases]
        poller.want(*(key for phase in self.gate_queries for queries in phase for key in queries.all()))

    # ------------------------------------------------------------ the phases' flags

    @functools.cached_property
    def launch_flags(self) -> tuple[str, ...]:
        """The flags the phases move, which say how many users are on the new code. A flag every
        phase sets the same way (a health check `on` throughout) says nothing about progress;
        with a single phase every flag counts."""
        phases = [{n: s.label() for n, s in self.target_flags(i + 1).items()} for i in range(len(self.plan.phases))]
        if len(phases) < 2:
            return tuple(self.plan.flag_names())
        steady = {n for n, label in phases[0].items() if all(other.get(n) == label for other in phases)}
        return tuple(n for n in self.plan.flag_names() if n not in steady)

    @functools.cached_property
    def phase_labels(self) -> tuple[str, ...]:
        """Each phase's exposure, short, for the phase strip (the plan's, so worked out once), by
        its launch flags: `5% → 25%`, not `5%/100% → 25%/100%`."""
        phases = [self.target_flags(i + 1) for i in range(len(self.plan.phases))]
        return tuple(short_exposure({n: s for n, s in flags.items() if n in self.launch_flags} or flags) for flags in phases)

    def target_flags(self, phase: int) -> dict[str, FlagState]:
        return {name: flag_state(s) for name, s in self.plan.phases[phase - 1].flags.items()}

    def rollback_flags(self) -> dict[str, FlagState]:
        return {name: flag_state(s) for name, s in self.plan.rollback_flags().items()}

    def cumulative_flags(self, phase: int) -> dict[str, FlagState]:
        """Every flag as phases 1..phase leave it (a phase sets only the flags it names)."""
        flags: dict[str, FlagState] = {}
        for index in range(1, phase + 1):
            flags.update(self.target_flags(index))
        return flags

    def phase_matching(self, observed: dict[str, FlagState]) -> int | None:
        """The furthest phase whose exposure is exactly what the flags read, if any."""
        off = FlagState(False, 0.0)
        found = None
        for index in range(1, len(self.plan.phases) + 1):
            wanted = self.cumulative_flags(index)
            if all((observed.get(n) or off).matches(wanted.get(n, off)) for n in self.plan.flag_names()):
                found = index
        return found

    # ------------------------------------------------------------ gates and blockers

    def looks(self, state: RolloutState) -> int:
        """How many times the current phase's soak judges a guardrail: a test's false-alarm rate is spread over them."""
        if state.phase < 1:
            return 1
        return max(1, int(self.plan.phases[state.phase - 1].hold // self.plan.poll_interval))

    def planned_share(self, state: RolloutState) -> float:
        """The part of users the plan puts on the new code now (the cohort flag as warroom set it), 0..1."""
        if state.phase < 1 or state.status.in_rollback:
            return 0.0
        flag = state.desired.get(self.cohort_flag)
        return flag.exposure if flag is not None and flag.enabled else 0.0

    def gate_views(self, state: RolloutState) -> list[GateView]:
        if state.phase < 1:
            return []
        views = []
        for gate, queries in zip(self.plan.phases[state.phase - 1].gates, self.gate_queries[state.phase - 1], strict=True):
            unit = self.plan.condition_unit(gate)
            judged = judge(gate, unit, queries, self.poller.readings, self.looks(state), self.planned_share(state))
            passed = True if judged.idle else None if judged.value is None else not judged.bad
            shown = judged.detail if judged.idle else judged.comparison.text if judged.comparison is not None and not judged.lacking else ""
            views.append(GateView(gate.label, judged.value, passed, judged.detail or ("" if judged.value is not None else "no data"), unit,
                                  gate.op, judged.limit if judged.limit is not None else gate.threshold, shown))
        return views

    def check_exposure(self, state: RolloutState, now: float) -> tuple[Kind, str, dict[str, Any]] | None:
        """The exposure check on this tick's readings; the journal entry (kind, message, data) when its verdict moved."""
        if self.exposure is None:
            return None
        age = None if state.phase < 1 or state.phase_started_at is None else max(0.0, now - state.phase_started_at)
        self.exposure_view = self.exposure.view(self.poller.readings, state.desired.get(self.exposure.flag), age)
        return self.exposure.news(self.exposure_view)

    def exposure_gate(self) -> list[GateView]:
        """The exposure check as the gate every phase has without writing it (shown with the phase's gates)."""
        view = self.exposure_view
        if view is None or view.status == ExposureStatus.IDLE:
            return []
        passed = {ExposureStatus.OK: True, ExposureStatus.MISMATCH: False, ExposureStatus.NONE: False}.get(view.status)
        # "exposure 24.6% (plan 25%) ✓": the label says what the share is of, so it fits at 80 columns.
        return [GateView("exposure", view.observed, passed, view.text, "ratio", shown=view.text.removeprefix("cohort "))]

    def step_blockers(self, state: RolloutState, guard_views: list[GuardrailView], now: float, *,
                      in_flight: bool, forced: bool = False) -> list[str]:
        """Why a step up is refused now. `forced` keeps only what even a force cannot override."""
        out: list[str] = []
        if not state.status.may_step:
            hint = {State.PAUSED: "resume first", State.ROLLED_BACK: "use retry to start again"}.get(state.status, "")
            out.append(f"state is {state.status.label}" + (f": {hint}" if hint else ""))
        if state.action is not None or in_flight:
            out.append("an action is still in flight")
        if state.drift:
            out.append("flag drift not acknowledged")
        # Paused, what else holds the next step is still worth saying (resuming will not be enough).
        if forced or (out and state.status != State.PAUSED):
            return out
        if state.phase >= 1:
            phase = self.plan.phases[state.phase - 1]
            left = phase.hold - (now - (state.phase_started_at or now))
            if left > 0:
                out.append(f"soak: {format_duration(left)} left of {format_duration(phase.hold)}")
            for gate in self.gate_views(state):
                if gate.passed is None:
                    out.append(f"gate {gate.label}: no data ({gate.detail})")
                elif not gate.passed:
                    out.append(f"gate {gate.label} is red ({gate.shown or format_value(gate.value, gate.unit)})")
            if self.exposure_view is not None and self.exposure_view.blocks:
                out.append(f"exposure: {self.exposure_view.text}")
            ticked = state.ticked_in()
            missing = [item.text for item, iid in zip(phase.checklist, phase.item_ids(), strict=True)
                       if item.required and iid not in ticked]
            if missing:
                out.append(f"checklist: {len(missing)} required item(s) not ticked: " + "; ".join(missing))
        for view in guard_views:
            if view.mode == "shadow":
                continue  # a shadow guardrail never acts, and holding a step up would be acting
            if view.status.breaching:
                out.append(f"guardrail {view.id} is breaching ({view.shown or format_value(view.value, view.unit)})")
            elif view.status == GuardrailStatus.NODATA:
                out.append(f"guardrail {view.id} has no data ({view.detail})")
        return out

    def next_change(self, state: RolloutState) -> str:
        """What a step up would change now: `phase 2/3 Half 50%: feature: 5% → 50%`."""
        if state.status == State.RUNNING and state.phase == len(self.plan.phases):
            return "complete the rollout (no flag change)"
        if not state.status.may_step:
            return ""
        parts = []
        for name, want in self.target_flags(state.phase + 1).items():
            have = state.desired.get(name) or self.flags.observed.get(name)
            if have is None or not have.matches(want):  # a flag already there changes nothing: not listed
                parts.append(f"{name}: {have.label() if have else 'absent'} → {want.label()}")
        return f"phase {state.phase + 1}/{len(self.plan.phases)} {self.plan.phases[state.phase].name}: " + (
            ", ".join(parts) or "no flag change")

    # ------------------------------------------------------------ flags against the state

    def rollback_not_done(self, state: RolloutState) -> dict[str, FlagState]:
        """ROLLED BACK, and flags read back other than the rollback set them (a late write landed)."""
        if state.status != State.ROLLED_BACK:
            return {}
        exposed = {}
        for name, wanted in self.rollback_flags().items():
            seen = self.flags.observed.get(name)
            if seen is not None and name not in self.flags.errors and not seen.matches(wanted):
                exposed[name] = seen
        return exposed

    def new_drift(self, state: RolloutState) -> dict[str, FlagState]:
        """Flags that read other than warroom set them, not yet recorded as drift."""
        new = {}
        for name, want in state.desired.items():
            have = self.flags.observed.get(name)
            if name in self.flags.errors or have is None:
                continue
            recorded = state.drift.get(name)
            if not have.matches(want) and (recorded is None or recorded != have):
                new[name] = have
        return new

    def exposed_at_start(self) -> dict[str, FlagState]:
        """The plan's flags that already read exposed (a new state file over a live launch)."""
        return {n: s for n in self.plan.flag_names() if (s := self.flags.observed.get(n)) is not None and s.exposure > 0}
