"""Reading a plan: YAML text to the model, every problem located (file, line, field) and in line order.

It never raises anything but PlanError: a plan is text anyone can write, and a traceback
at 3 AM tells an on-call engineer nothing about which line to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from warroom.plan import plugins
from warroom.plan.checks import capability_problems, meaning_problems, unknown_pane_problems
from warroom.plan.faults import load_faults
from warroom.plan.fields import FROM_TEXT
from warroom.plan.model import Plan
from warroom.plan.problems import validation_problems
from warroom.plan.sources import PluginSourceConfig, SimulatorSourceConfig
from warroom.plan.units import thresholds_in_pane_units
from warroom.plan.yamlfile import Located, PlanError, Problem, compose, dotted, read_text


def _plugin_problems(group: str, name: str, keys: dict[str, Any], located: Located, at: tuple[Any, ...],
                     name_key: str) -> list[Problem]:
    """A flag provider's or another package's source's own keys, checked by its own model."""
    try:
        plugin = plugins.load(group, name)
    except plugins.PluginError as exc:
        line, col = located.where(at + (name_key,))
        return [Problem(located.file, line, col, dotted(at + (name_key,)), str(exc))]
    try:
        plugin.validate(keys, FROM_TEXT)
    except ValidationError as exc:
        return validation_problems(exc, located, at, plugin.config)
    return []


def _provider_problems(raw: Any, located: Located) -> list[Problem]:
    if not isinstance(raw, dict) or not isinstance(raw.get("provider"), str):
        return []  # the Plan model reports the missing or malformed mapping
    return _plugin_problems(plugins.FLAG_PROVIDERS, raw["provider"], raw, located, ("flag_provider",), "provider")


def _source_problems(plan: Plan, located: Located) -> list[Problem]:
    out: list[Problem] = []
    for name, src in plan.sources.items():
        if isinstance(src, PluginSourceConfig):
            keys = {**(src.model_extra or {}), "type": src.type}
            out += _plugin_problems(plugins.SOURCES, src.type, keys, located, ("sources", name), "type")
    return out


def _faults_file_problems(plan: Plan, located: Located, base_dir: Path) -> list[Problem]:
    """A simulator's faults_file is part of the plan: a typo in it must not wait for the run."""
    out: list[Problem] = []
    for name, src in plan.sources.items():
        if isinstance(src, SimulatorSourceConfig) and src.faults_file:
            path = Path(src.faults_file).expanduser()
            try:
                load_faults(path if path.is_absolute() else base_dir / path)
            except PlanError as exc:
                if exc.problems[0].message == "no such file":
                    line, col = located.where(("sources", name, "faults_file"))
                    out.append(Problem(located.file, line, col, f"sources.{name}.faults_file", f"no such file: {path}"))
                else:
                    out += exc.problems
    return out


def in_line_order(problems: list[Problem], file: str) -> list[Problem]:
    """The plan's own problems top to bottom, then those of files it names (a fault schedule)."""
    return sorted(problems, key=lambda p: (p.file != file, p.file, p.line, p.column))


def parse_plan(text: str, file: str = "<plan>", base_dir: Path | None = None) -> Plan:
    """Validate plan text. Raises PlanError with located problems, in line order, never anything else."""
    data, located = compose(text, file)
    if data is None:
        raise PlanError([Problem(file, 1, 1, "", "the plan is empty; start from sample-config.yaml")])
    if not isinstance(data, dict):
        raise PlanError([Problem(file, 1, 1, "", "the plan must be a mapping with rollout, sources, phases, …")])
    panes = thresholds_in_pane_units(data)
    problems = unknown_pane_problems(panes, located)
    provider = _provider_problems(data.get("flag_provider"), located)
    try:
        plan = Plan.model_validate(data, context=FROM_TEXT)
    except ValidationError as exc:
        # A threshold's unit comes from its pane: with the pane unknown, the pane is the problem.
        masked = {dotted(loc + (key,)) for loc, _ in panes.unknown for key in ("above", "below")}
        found = [p for p in validation_problems(exc, located, (), Plan) if p.field not in masked]
        raise PlanError(in_line_order(found + problems + provider, file)) from None
    problems += provider + _source_problems(plan, located) + meaning_problems(plan, located)
    problems += _faults_file_problems(plan, located, base_dir or Path("."))
    if not provider:
        problems += capability_problems(plan, located)
    if problems:
        raise PlanError(in_line_order(problems, file))
    extras: dict[str, Any] = {"base_dir": base_dir or Path(".")}
    if file != "<plan>":
        extras["path"] = Path(file)
    return plan.model_copy(update=extras)


def load_plan(path: str | Path) -> Plan:
    path = Path(path)
    return parse_plan(read_text(path, "plan"), str(path), path.resolve().parent)

