"""What the plan allows now: step blockers, gates, the next change, drift.

Pure judgement over the plan, the rollout state, this tick's readings and the flags as
read back; nothing here writes or journals.
"""

from __future__ import annotations

from typing import Any

from ..flagstate import FlagState
from ..plan import FlagSetting, Plan
from ..units import format_duration, format_value
from ..snapshot import GateView, GuardrailView, State
from .polling import FlagReader, Poller
from .state import RolloutState


def flag_state(setting: FlagSetting) -> FlagState:
    return FlagState(setting.enabled, setting.rollout if setting.enabled else 0.0, tuple(setting.segments))


def exposure_label(flags: dict[str, FlagState]) -> str:
    return ", ".join(f"{name} {state.label()}" for name, state in flags.items())


class Policy:
    def __init__(self, plan: Plan, poller: Poller, flags: FlagReader):
        self.plan = plan
        self.poller = poller
        self.flags = flags
        # Every gate's query is asked every tick, so a gate is green or red the moment its phase begins.
        self.gate_keys = [[poller.key_for(g.pane, g.source, g.query) for g in phase.gates] for phase in plan.phases]

    # ------------------------------------------------------------ the phases' flags

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

    def gate_views(self, state: RolloutState) -> list[GateView]:
        if state.phase < 1:
            return []
        views = []
        for gate, key in zip(self.plan.phases[state.phase - 1].gates, self.gate_keys[state.phase - 1]):
            unit = self.plan.pane(gate.pane).unit if gate.pane else "count"
            value, detail = self.poller.value(key)
            views.append(GateView(gate.label, value, None if value is None else gate.passes(value), detail, unit,
                                  "above" if gate.above is not None else "below", gate.threshold))
        return views

    def step_blockers(self, state: RolloutState, guard_views: list[GuardrailView], now: float, *,
                      in_flight: bool, forced: bool = False) -> list[str]:
        """Why a step up is refused now. `forced` keeps only what even a force cannot override."""
        out: list[str] = []
        if state.status not in (State.PENDING, State.RUNNING):
            hint = {State.PAUSED: "resume first", State.ROLLED_BACK: "use retry to start again"}.get(state.status, "")
            out.append(f"state is {state.status.label}" + (f": {hint}" if hint else ""))
        if state.action is not None or in_flight:
            out.append("an action is still in flight")
        if state.drift:
            out.append("flag drift not acknowledged")
        if forced or out:
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
                    out.append(f"gate {gate.label} is red ({format_value(gate.value, gate.unit)})")
            ticked = state.ticked_in()
            missing = [item.text for item, iid in zip(phase.checklist, phase.item_ids()) if item.required and iid not in ticked]
            if missing:
                out.append(f"checklist: {len(missing)} required item(s) not ticked: " + "; ".join(missing))
        for view in guard_views:
            if view.status in ("pending", "breach"):
                out.append(f"guardrail {view.id} is breaching ({format_value(view.value, view.unit)})")
            elif view.status == "nodata":
                out.append(f"guardrail {view.id} has no data ({view.detail})")
        return out

    def next_change(self, state: RolloutState) -> str:
        """What a step up would change now: `phase 2/3 Half 50%: feature: 5% → 50%`."""
        if state.status == State.RUNNING and state.phase == len(self.plan.phases):
            return "complete the rollout (no flag change)"
        if state.status not in (State.PENDING, State.RUNNING):
            return ""
        parts = []
        for name, want in self.target_flags(state.phase + 1).items():
            have = state.desired.get(name) or self.flags.observed.get(name)
            parts.append(f"{name}: {have.label() if have else '?'} → {want.label()}")
        return f"phase {state.phase + 1}/{len(self.plan.phases)} {self.plan.phases[state.phase].name}: " + ", ".join(parts)

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

    def intent_gates(self, state: RolloutState) -> list[dict[str, Any]]:
        """The gates as they stand, journaled with a step up (why it was allowed)."""
        return [{"gate": g.label, "value": g.value, "passed": g.passed} for g in self.gate_views(state)]
