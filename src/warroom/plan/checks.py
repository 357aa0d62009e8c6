"""What a plan means, checked before anything runs: a plan that validates must be safe to run.

The model (model.py) checks each value on its own; these checks look across the plan:
ids and references, a rollback that takes back every flag the launch touches, and flag
states the chosen provider can actually set. Each problem names file, line and field.
"""

from __future__ import annotations

from warroom.plan import plugins
from warroom.plan.conditions import Condition
from warroom.plan.flagsetting import FlagSetting
from warroom.plan.model import Plan
from warroom.plan.problems import suggestion
from warroom.plan.signoffs import signoff_problems
from warroom.plan.sources import SimulatorSourceConfig
from warroom.plan.units import PaneRefs
from warroom.plan.yamlfile import Loc, Located, Problem, dotted


class _Problems(list[Problem]):
    def __init__(self, located: Located):
        super().__init__()
        self.located = located

    def add(self, loc: Loc, message: str) -> None:
        line, col = self.located.where(loc)
        self.append(Problem(self.located.file, line, col, dotted(loc), message))


def unknown_pane_problems(panes: PaneRefs, located: Located) -> list[Problem]:
    """Guardrails and gates naming a pane the plan does not define (found before the model is built,
    so a threshold written in the missing pane's unit, `above: 1s`, cannot hide it).

    The typo is blamed where it is: a name several conditions agree on, close to a pane id that
    nothing names, is the id misspelt (the pane's line); a name one condition uses is that line's typo.
    """
    named = [pane for _, pane in panes.refs]
    unused = [pane for _, pane in panes.ids if pane not in named]
    out = _Problems(located)
    blamed: set[str] = set()
    for loc, pane in panes.unknown:
        near = suggestion(pane, unused)
        if near is not None and named.count(pane) > 1:
            if near not in blamed:
                blamed.add(near)
                where = ", ".join(str(located.where(ref + ("pane",))[0]) for ref, name in panes.refs if name == pane)
                id_loc = next(at for at, pid in panes.ids if pid == near)
                out.add(id_loc, f"pane id {near!r} is named by no guardrail or gate, while {pane!r} is named on lines {where}: "
                                f"is this id misspelt?")
            continue
        near = suggestion(pane, [pid for _, pid in panes.ids])
        hint = f"did you mean {near} (line {located.where(next(at for at, pid in panes.ids if pid == near))[0]})? " if near else ""
        defined = ", ".join(pid for _, pid in panes.ids) or "none"
        out.add(loc + ("pane",), f"unknown pane {pane!r} ({hint}panes defined: {defined})")
    return out


def meaning_problems(plan: Plan, located: Located) -> list[Problem]:
    """Cross-references pydantic cannot see: ids, names, sources, flags, the rollback."""
    out = _Problems(located)
    pane_ids = [p.id for p in plan.panes]
    for i, pid in enumerate(pane_ids):
        if pid in pane_ids[:i]:
            out.add(("panes", i, "id"), f"pane id {pid!r} is used twice")
    sources = list(plan.sources)

    def check_source(loc: Loc, name: str | None) -> None:
        if name is not None and name not in plan.sources:
            out.add(loc + ("source",), f"unknown source {name!r} (the plan defines: {', '.join(sources)})")

    for i, pane in enumerate(plan.panes):
        check_source(("panes", i), pane.source)

    def check_cohorts(loc: Loc, cond: Condition) -> None:
        """A comparison's and minimum evidence's sources, and units that must agree."""
        known = cond.pane is None or cond.pane in pane_ids  # an unknown pane is reported on its own
        if cond.compare is not None:
            check_source(loc + ("compare",), cond.compare.source)
            if cond.pane and known and cond.compare.unit and cond.compare.unit != plan.pane(cond.pane).unit:
                out.add(loc + ("compare", "unit"), f"the comparison is shown on pane {cond.pane!r}, whose unit is "
                                                   f"{plan.pane(cond.pane).unit}: drop compare.unit or make them agree")
        if cond.evidence is not None:
            check_source(loc + ("evidence",), cond.evidence.source)
            if cond.evidence.test and known and plan.condition_unit(cond) not in ("ratio", "percent"):
                out.add(loc + ("evidence", "test"), f"the test compares ratios (errors over requests), and this comparison is in "
                                                    f"{plan.condition_unit(cond)}: drop `test`, or compare a ratio")

    guard_ids: list[str] = []
    for i, g in enumerate(plan.guardrails):
        check_source(("guardrails", i), g.source)
        check_cohorts(("guardrails", i), g)
        gid = plan.guardrail_id(i)
        if gid in guard_ids:
            out.add(("guardrails", i), f"guardrail id {gid!r} is used twice; give each an `id`")
        guard_ids.append(gid)
    names: list[str] = []
    for pi, phase in enumerate(plan.phases):
        if phase.name in names:
            # The console, the journal, the report and `status` tell phases apart by name.
            out.add(("phases", pi, "name"), f"phase name {phase.name!r} is used twice (also phase {names.index(phase.name) + 1}); "
                                             "give each phase its own name")
        names.append(phase.name)
        for gi, gate in enumerate(phase.gates):
            check_source(("phases", pi, "gates", gi), gate.source)
            check_cohorts(("phases", pi, "gates", gi), gate)
        seen: list[str] = []
        for ii, (iid, item) in enumerate(zip(phase.item_ids(), phase.checklist, strict=True)):
            if item.id is not None and item.id.isdigit():
                out.add(("phases", pi, "checklist", ii, "id"),
                        f"checklist id {item.id!r} is a number, and numbers mean positions (`warroom tick PLAN 2` is the second item); "
                        "use a word")
                continue
            if iid in seen:
                out.add(("phases", pi, "checklist", ii, "id"), f"checklist id {iid!r} is used twice in this phase")
            seen.append(iid)
        if not phase.flags:
            out.add(("phases", pi, "flags"), "a phase must set at least one flag")
    _rollback_problems(plan, out)
    signoff_problems(plan, out.add)
    for name, src in plan.sources.items():
        if isinstance(src, SimulatorSourceConfig) and src.flag and src.flag not in plan.flag_names():
            out.add(("sources", name, "flag"), f"flag {src.flag!r} is not set by any phase")
    if plan.exposure is not None:
        check_source(("exposure",), plan.exposure.source)
        if plan.exposure.flag and plan.exposure.flag not in plan.flag_names():
            out.add(("exposure", "flag"), f"flag {plan.exposure.flag!r} is not set by any phase (phases set: {', '.join(plan.flag_names())})")
    return out


def _rollback_problems(plan: Plan, out: _Problems) -> None:
    """An explicit rollback names every flag a phase sets: a flag it leaves out would stay exposed
    after a rollback that reports success (the audit's drill left one at 5 % and passed)."""
    flags = plan.rollback.flags
    if flags is None:
        return  # the default rollback switches off every flag the phases set
    known = list(dict.fromkeys(n for ph in plan.phases for n in ph.flags))
    for name in flags:
        if name not in known:
            out.add(("rollback", "flags", name), f"flag {name!r} is not set by any phase (phases set: {', '.join(known)})")
    for name in known:
        if name not in flags:
            pi = next(i for i, ph in enumerate(plan.phases) if name in ph.flags)
            line, _ = out.located.where(("phases", pi, "flags", name))
            out.add(("rollback", "flags"),
                    f"flag {name!r} is set by phase {pi + 1} {plan.phases[pi].name!r} (line {line}) but not by the rollback, "
                    f"which would leave it exposed: add `{name}: off` (or the state it had before the launch)")


def capability_problems(plan: Plan, located: Located) -> list[Problem]:
    """Flag states the plan's provider cannot set (0.1 % on Unleash, segments on an API without
    them): refused now, not found by a step up that retries and pauses on launch day."""
    provider = plugins.load(plugins.FLAG_PROVIDERS, plan.flag_provider.provider)
    config = provider.validate(plan.flag_provider.keys())
    out = _Problems(located)

    def check(loc: Loc, setting: FlagSetting, where: str) -> None:
        refusal = provider.capabilities.refusal(setting.as_state(), config)
        if refusal:
            out.add(loc, f"{where}: {refusal}")

    for pi, phase in enumerate(plan.phases):
        for name, setting in phase.flags.items():
            check(("phases", pi, "flags", name), setting, f"phase {pi + 1} {phase.name!r} sets {name!r} to {setting.as_state().label()}")
    for name, setting in (plan.rollback.flags or {}).items():
        check(("rollback", "flags", name), setting, f"the rollback sets {name!r} to {setting.as_state().label()}")
    return out
