"""Real plans, mutated the ways people and tools break them: parse_plan answers with located problems, never a traceback.

The plans are the ones users start from (sample-config.yaml, examples/, the built-in
demo); the mutations are wrong types, lists where a scalar belongs, deleted keys, huge and
non-finite numbers, and control characters. A fuzzer found `TypeError: unhashable type:
'list'` here once (a comparison's pane given as a list): the first example pins it.
"""

from __future__ import annotations

import copy
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from warroom.plan.load import parse_plan
from warroom.plan.yamlfile import PlanError

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"sample-config.yaml": (ROOT / "sample-config.yaml").read_text(encoding="utf-8"),
           "demo.yaml": resources.files("warroom.plan").joinpath("demo.yaml").read_text(encoding="utf-8"),
           **{f"examples/{p.name}": p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples").glob("*.yaml"))}}
PLANS = {name: yaml.safe_load(text) for name, text in SOURCES.items() if "phases" in (yaml.safe_load(text) or {})}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


PATHS = {name: _paths(plan)[1:] for name, plan in PLANS.items()}

CONTROL = ["\x1b[31mred\x1b[0m", "a\x00b", "\u202eevil", "line\nbreak", "\x07", "tab\tbed", "\x9b2J", "é\u200b"]
HUGE = [10**30, -10**30, float("inf"), float("-inf"), float("nan"), 1e308, -1e-308, 2**63, 99999999999999999999]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.sampled_from(HUGE), st.sampled_from(CONTROL),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["30s", "5m", "99999999999999999999h", "1%", "+0.5pp", "×2", "env:X", "rollback", "above", "simulator",
                     "local", "ratio", "{cohort}", "postgresql://u:p@h/db", "http://u:p@h:1"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(PLANS)))
    plan = copy.deepcopy(PLANS[name])
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS[name]))
        parent = plan
        try:
            for part in path[:-1]:
                parent = parent[part]
            old = parent[path[-1]]
            action = draw(st.sampled_from(["replace", "listify", "delete", "add", "huge", "control"]))
            if action == "replace":
                parent[path[-1]] = draw(values)
            elif action == "listify":  # a list where a scalar (or a mapping) belongs
                parent[path[-1]] = [old]
            elif action == "delete":
                del parent[path[-1]]
            elif action == "huge":
                parent[path[-1]] = draw(st.sampled_from(HUGE))
            elif action == "control":
                parent[path[-1]] = draw(st.sampled_from(CONTROL)) + (old if isinstance(old, str) else "")
            elif isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=8))] = draw(values)
        except (KeyError, IndexError, TypeError):
            continue
    return name, yaml.safe_dump(plan, sort_keys=False, allow_unicode=True)


def _comparison_pane_as_a_list() -> tuple[str, str]:
    plan = copy.deepcopy(PLANS["sample-config.yaml"])
    compared = next(g for g in plan["guardrails"] if "compare" in g)
    compared["pane"] = [compared["pane"]]
    return "sample-config.yaml", yaml.safe_dump(plan, sort_keys=False)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
@example(_comparison_pane_as_a_list())
def test_mutated_real_plans_raise_only_located_plan_errors(case: tuple[str, str]) -> None:
    name, text = case
    base = ROOT / "examples" if name.startswith("examples/") else ROOT
    try:
        parse_plan(text, "gen.yaml", base)
    except PlanError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.line >= 1 and problem.column >= 1, str(problem)
            assert re.match(r"^[^\n]+:\d+:\d+: ", str(problem)), str(problem)
            assert problem.file == "gen.yaml" or problem.file.startswith(str(ROOT)), str(problem)
