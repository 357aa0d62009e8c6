"""The plan: one YAML file describing a rollout, as an immutable model (the schema only).

The plan is warroom's API: engine, consoles, drills and reports read it; nothing here
imports them or any source or flag provider. Reading a file into this model, with every
problem located, is load.py; what a plan means across its parts is checks.py.
Unknown keys are errors, because a typo such as `above_` must never silently disable a guardrail.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field

from warroom.plan.approvals import Approval
from warroom.plan.conditions import Condition, ExposureCheck, Gate, Guardrail, Unit
from warroom.plan.fields import Duration, Ident, Number, PositiveDuration, Strict
from warroom.plan.flagsetting import FlagSetting, FlagValue
from warroom.plan.go_no_go import GoNoGo
from warroom.plan.page import Page
from warroom.plan.roles import Role
from warroom.plan.rollback import NotifyTarget, RollbackSpec
from warroom.plan.schedule import Instant, Schedule
from warroom.plan.secret_refs import secret_references
from warroom.plan.simulate import SimulateExpression, modelled_exposure
from warroom.plan.sources import FlagProviderConfig, SimulatorSourceConfig, SourceConfig
from warroom.plan.state import StateConfig
from warroom.plan.updates import Updates


class Pane(Strict):
    id: Ident
    title: str
    query: str
    source: str | None = None
    unit: Unit = "count"
    warn: Number | None = None
    breach: Number | None = None
    # Which side of the thresholds is bad; inferred from warn/breach when both are given.
    bad: Literal["above", "below"] | None = None
    series_label: str | None = None
    # What the pane models in a drill (the simulator answers it); default: inferred from query and unit.
    simulate: SimulateExpression | None = None

    @property
    def bad_side(self) -> str:
        if self.bad:
            return self.bad
        if self.warn is not None and self.breach is not None and self.breach < self.warn:
            return "below"
        return "above"



class ChecklistItem(Strict):
    text: str
    required: bool = False
    id: Ident | None = None


def _item_shorthand(value: Any) -> Any:
    return {"text": value} if isinstance(value, str) else value


Item = Annotated[ChecklistItem, BeforeValidator(_item_shorthand)]


class Phase(Strict):
    name: str
    flags: dict[str, FlagValue]
    hold: Duration = 0.0
    gates: list[Gate] = []
    checklist: list[Item] = []
    approvals: Approval | None = None  # who signs off before this phase begins
    at: Instant | None = None  # a scheduled step up to this phase (a request, checked again when it fires)
    not_before: Instant | None = None  # its earliest time only

    def earliest(self) -> dt.datetime | None:
        """The earliest this phase may begin by the clock (its `at` or `not_before`), if it has one."""
        times = [t for t in (self.at, self.not_before) if t is not None]
        return max(times) if times else None

    def item_ids(self) -> list[str]:
        return [item.id or f"{i + 1}" for i, item in enumerate(self.checklist)]

    def find_item(self, ref: str) -> str:
        """The id of the item `ref` names: a number is always a position (1 = first item, whatever
        ids the items have), else an id, else a unique part of an item's text. LookupError otherwise."""
        ids = self.item_ids()
        if ref.strip().isdigit() and 1 <= int(ref) <= len(ids):
            return ids[int(ref) - 1]
        if ref in ids:
            return ref
        matches = [iid for iid, item in zip(ids, self.checklist, strict=True) if ref.lower() in item.text.lower()]
        if len(matches) != 1:
            raise LookupError(f"no single checklist item {ref!r}; items: " + ", ".join(
                f"{i + 1}" + (f" ({iid})" if iid != f"{i + 1}" else "") for i, iid in enumerate(ids)))
        return matches[0]



class Automation(Strict):
    # auto: step up by itself as soon as soak, gates and required items allow.
    step_up: Literal["manual", "auto"] = "manual"


class RolloutInfo(Strict):
    name: Annotated[str, Field(min_length=1, max_length=120)]
    environment: Literal["production", "staging", "drill"]
    description: str = ""


class Plan(Strict):
    rollout: RolloutInfo
    sources: Annotated[dict[str, SourceConfig], Field(min_length=1)]
    flag_provider: FlagProviderConfig
    poll_interval: PositiveDuration = 5.0
    panes: list[Pane] = []
    guardrails: list[Guardrail] = []
    phases: Annotated[list[Phase], Field(min_length=1)]
    rollback: RollbackSpec = Field(default_factory=RollbackSpec)
    notify: list[NotifyTarget] = []
    automation: Automation = Field(default_factory=Automation)
    state: StateConfig | None = None  # a path (SQLite) or PostgreSQL
    keys: dict[str, str] = {}
    theme: str | None = None
    exposure: ExposureCheck | None = None  # the exposure check, a gate every phase has
    schedule: Schedule = Field(default_factory=Schedule)  # clock times, business hours, the freeze calendar
    updates: Updates | None = None  # the stakeholder updates the plan promises (plan/updates.py)
    page: Page | None = None  # the read-only status page (plan/page.py)
    roles: dict[Ident, Role] = {}  # who may sign off (plan/roles.py)
    go_no_go: GoNoGo | None = None  # the decision before the first exposure (plan/go_no_go.py)

    # Set by load_plan; not part of the YAML.
    base_dir: Path = Field(default=Path("."), exclude=True)
    path: Path | None = Field(default=None, exclude=True)

    def pane(self, pane_id: str) -> Pane:
        return next(p for p in self.panes if p.id == pane_id)

    def flag_names(self) -> list[str]:
        names: list[str] = []
        for phase in self.phases:
            names.extend(n for n in phase.flags if n not in names)
        for name in (self.rollback.flags or {}):
            if name not in names:
                names.append(name)
        return names

    def rollback_flags(self) -> dict[str, FlagSetting]:
        if self.rollback.flags is not None:
            return dict(self.rollback.flags)
        return {name: FlagSetting(enabled=False, rollout=0.0) for name in self.flag_names()}

    def resolve_path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def default_source(self) -> str:
        return next(iter(self.sources))

    def guardrail_id(self, index: int) -> str:
        g = self.guardrails[index]
        if g.id:
            return g.id
        if g.compare is not None:
            return f"{g.pane or 'cohort'}-vs-control"
        return f"{g.pane or 'query'}-{g.op}-{g.threshold:g}"

    def condition_unit(self, cond: Condition) -> str:
        """The unit a guardrail's or gate's numbers are in: its comparison's, else its pane's."""
        if cond.compare is not None and cond.compare.unit:
            return cond.compare.unit
        return self.pane(cond.pane).unit if cond.pane else "count"

    # What the journal keeps of the plan for reports: never sources, flag provider, runbook
    # or notify targets, whose headers and URLs may carry credentials.
    # What the engine keeps of the plan in its store: what a report reads (the roles of its sign-off table
    # too), and what a console attaching to the engine needs (its keys and theme), so neither parses the plan file again.
    REPORTED: ClassVar[frozenset[str]] = frozenset({"rollout", "poll_interval", "panes", "guardrails", "phases", "automation",
                                                    "exposure", "keys", "theme", "roles"})

    def journal_copy(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, include=set(self.REPORTED))

    @classmethod
    def from_journal_copy(cls, body: dict[str, Any]) -> Plan:
        """The plan as it ran, for a report: it reads no source and no flag, so those are stand-ins."""
        return cls.model_validate({**body, "sources": {"journal": {"type": "simulator"}}, "flag_provider": {"provider": "local"}})

    def digest(self) -> str:
        """What an approval binds to: the plan as the engine runs it (any edit that changes a value changes it;
        secrets are references here, never their values)."""
        # Not where the state is nor how a console looks: an operator's copy names their own database role.
        body = json.dumps(self.model_dump(mode="json", by_alias=True, exclude={"state", "keys", "theme"}), sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def approval_for(self, phase: int) -> Approval | None:
        """The sign-off the step into `phase` (1-based) waits for: phase 1's own and the go/no-go's together."""
        own = self.phases[phase - 1].approvals
        launch = self.go_no_go.approval() if phase == 1 and self.go_no_go is not None else None
        if own is None or launch is None:
            return own or launch
        timeouts = [t for t in (own.timeout, launch.timeout) if t is not None]
        return own.model_copy(update={"roles": {**launch.roles, **own.roles}, "timeout": min(timeouts) if timeouts else None,
                                      "self_approval": own.self_approval and launch.self_approval})

    def secret_references(self) -> list[tuple[str, str]]:
        """(where, reference) for every secret the plan uses: source credentials and credential headers,
        the flag provider's token, runbook webhooks and headers, notify URLs. Found by type, so a new
        provider's or step's secret field is included without a list to keep up to date."""
        return secret_references(self)

    # ------------------------------------------------------------ exposure

    def driving_flag(self) -> str | None:
        """The flag whose exposure says how many users run the new code: the simulator's `flag`, else the plan's first."""
        sim = next((s for s in self.sources.values() if isinstance(s, SimulatorSourceConfig) and s.flag), None)
        names = self.flag_names()
        return sim.flag if sim else (names[0] if names else None)

    def phase_exposures(self, flag: str | None = None) -> list[float]:
        """Each phase's exposure in percent of users through `flag` (default: the driving flag); a phase
        that does not set the flag keeps it, and a segment counts as SEGMENT_SHARE of users."""
        flag = flag or self.driving_flag()
        out, current = [], 0.0
        for phase in self.phases:
            setting = phase.flags.get(flag) if flag else None
            if setting is not None:
                current = modelled_exposure(setting.as_state()) * 100
            out.append(current)
        return out
