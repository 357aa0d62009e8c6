"""What a plan's queries mean to the simulator, so any plan can be drilled offline.

A pane says it with `simulate:` — a simulator metric (`error_rate`) or a small
arithmetic expression of them (`latency_p95 * 1000`, `100 * (1 - connection_success)`).
Where it says nothing, the model is inferred from the query and the pane's unit (an
error ratio of 5xx over all requests, a histogram_quantile(0.95, …), CPU, memory…);
`warroom check` lists every pane a drill cannot model, with the line to add.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from warroom.core.units import parse_duration
from warroom.plan.conditions import Condition
from warroom.plan.model import Plan
from warroom.plan.simulate import parse_expression
from warroom.sources.simulator.model import MODEL, metric_for_query

# ---------------------------------------------------------------- inference from PromQL and unit

_QUANTILE = re.compile(r"histogram_quantile\(\s*(0?\.\d+|1(?:\.0+)?)")
_INCREASE = re.compile(r"increase\(.*\[(\d+(?:ms|s|m|h))\]")
_SERVER_ERROR = re.compile(r"""(code|status|status_code|response_code)\s*=~?\s*["']5|5xx|\b5\.\.""")


def _metric_in(query: str) -> str | None:
    """The simulator metric a PromQL (or other) query most likely reads, from its shape and names."""
    q = query.lower()
    increase = _INCREASE.search(q)
    if increase and re.search(r"request|session|user", q) and "/" not in q:
        # A count in the window (minimum evidence, the exposure check): the rate times the window.
        rate = "session_rate" if re.search(r"session|user", q) else "request_rate"
        return f"{rate} * {parse_duration(increase.group(1)):g}"
    quantile = _QUANTILE.search(q)
    if quantile:
        return {0.5: "latency_p50", 0.95: "latency_p95", 0.99: "latency_p99"}.get(round(float(quantile.group(1)), 3))
    connect = re.search(r"connect|websocket|\bws_", q)
    if connect and "success" in q and "/" in q:
        return "connection_success"
    if connect and re.search(r"fail", q) and "/" in q:
        return "1 - connection_success"
    if _SERVER_ERROR.search(q) or re.search(r"error", q):
        return "error_rate" if "/" in q else "error_rate * request_rate"
    if "cpu" in q:
        return "cpu"
    if re.search(r"mem", q):
        return "memory"
    if connect:
        return "ws_connections"
    if re.search(r"session|user", q) and "rate(" in q:
        return "session_rate"
    if re.search(r"request", q) and "rate(" in q:
        return "request_rate"
    return None


# The unit a pane shows for each unit the simulator speaks, and the factor between them.
_SCALE = {("ratio", "ratio"): "", ("ratio", "percent"): " * 100", ("seconds", "seconds"): "",
          ("seconds", "ms"): " * 1000", ("count", "count"): ""}


def infer(query: str, unit: str | None = None) -> str | None:
    """A `simulate:` expression for a query shown in `unit` (None: as the query gives it), or None."""
    exact = metric_for_query(query)
    base = exact or _metric_in(query)
    if base is None:
        return None
    if unit is None:
        return base
    model_unit = MODEL[parse_expression(base).metrics[0]][0]
    if base == "error_rate * request_rate":
        model_unit = "count"
    scale = _SCALE.get((model_unit, unit))
    if scale is None:
        return None  # a latency on a ratio pane, say: a guess would be a wrong number
    if scale and (" " in base):
        return f"({base}){scale}"
    return base + scale


def suggestion(unit: str) -> str:
    """A `simulate:` line to start from for a pane in `unit`, when nothing could be inferred."""
    return {"ratio": "error_rate", "percent": "error_rate * 100", "seconds": "latency_p95", "ms": "latency_p95 * 1000",
            "count": "request_rate", "bytes": "memory * 8e9"}.get(unit, "request_rate")


# ---------------------------------------------------------------- a plan's queries

@dataclass(frozen=True)
class PaneModel:
    pane: str  # pane id
    index: int  # in plan.panes
    expression: str | None  # None: the drill cannot model it
    how: str  # "simulate:" | "inferred" | "unknown"


def pane_models(plan) -> list[PaneModel]:
    """What each pane models in a drill: its `simulate:`, else inferred from query and unit."""
    out = []
    for i, pane in enumerate(plan.panes):
        if pane.simulate:
            out.append(PaneModel(pane.id, i, pane.simulate, "simulate:"))
        else:
            expression = infer(pane.query, pane.unit)
            out.append(PaneModel(pane.id, i, expression, "inferred" if expression else "unknown"))
    return out


@dataclass(frozen=True)
class QueryModel:
    """What the simulator answers for one query: an expression, over one cohort or the whole service."""

    expression: str
    cohort: str | None = None  # new | control; None: the service


def _cohort_queries(plan: Plan) -> list[tuple[str, str | None, str | None]]:
    """(query, unit or None, cohort) of every cohort-side and count query a guardrail, gate or the exposure check asks."""
    out: list[tuple[str, str | None, str | None]] = []

    def add(cond: Condition) -> None:
        if cond.compare is not None:
            unit = plan.condition_unit(cond)
            out.extend((cond.compare.side(c), unit, c) for c in ("new", "control"))
            if cond.evidence is not None:
                out.extend((cond.compare.fill(cond.evidence.count, c), None, c) for c in ("new", "control"))
        elif cond.evidence is not None:
            out.append((str(cond.evidence.count), None, None))

    for cond in _conditions(plan):
        add(cond)
    if plan.exposure is not None:
        out.extend((plan.exposure.side(c), None, c) for c in ("new", "control"))
    return out


def _conditions(plan: Plan) -> list[Condition]:
    return [*plan.guardrails, *(g for phase in plan.phases for g in phase.gates)]


def query_models(plan: Plan) -> dict[str, QueryModel]:
    """query text → what the simulator answers, for every query in the plan it can model.

    Panes first (their `simulate:` or unit-aware inference); a guardrail's or gate's own
    `query:` is inferred as the query gives it; each side of a cohort comparison, each
    count of minimum evidence and the exposure check's queries are inferred for their cohort.
    """
    models: dict[str, QueryModel] = {}
    for model, pane in zip(pane_models(plan), plan.panes, strict=True):
        if model.expression and pane.query not in models:
            models[pane.query] = QueryModel(model.expression)
    for cond in _conditions(plan):
        if cond.query and cond.query not in models:
            expression = infer(cond.query)
            if expression:
                models[cond.query] = QueryModel(expression)
    for query, unit, cohort in _cohort_queries(plan):
        if query not in models:
            expression = infer(query, unit)
            if expression:
                models[query] = QueryModel(expression, cohort)
    return models


def unmodelled_conditions(plan: Plan) -> list[str]:
    """Guardrails, gates and the exposure check a drill could not judge: a query with no model (they would see no data)."""
    models = query_models(plan)
    out = []
    for i, g in enumerate(plan.guardrails):
        if g.query and g.query not in models:
            out.append(f"guardrail {plan.guardrail_id(i)} (query {g.query})")
    for pi, phase in enumerate(plan.phases):
        for gate in phase.gates:
            if gate.query and gate.query not in models:
                out.append(f"gate {gate.label} of phase {pi + 1} (query {gate.query})")
    missing = list(dict.fromkeys(q for q, _, _ in _cohort_queries(plan) if q not in models))
    out += [f"cohort query {q}" for q in missing]
    return out


def pane_lines(plan) -> dict[int, int]:
    """Line of each pane in the plan file (pane index → line), for messages; empty without a file."""
    if plan.path is None:
        return {}
    try:
        root = yaml.compose(plan.path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    if not isinstance(root, yaml.MappingNode):
        return {}
    for key, value in root.value:
        if key.value == "panes" and isinstance(value, yaml.SequenceNode):
            return {i: item.start_mark.line + 1 for i, item in enumerate(value.value)}
    return {}


def unmodelled_advice(plan, only: set[str] | None = None) -> list[str]:
    """One line per pane a drill cannot model (of `only` these pane ids): where it is and the `simulate:` line to add."""
    lines = pane_lines(plan)
    out = []
    for model in pane_models(plan):
        if model.expression is None and (only is None or model.pane in only):
            pane = plan.panes[model.index]
            where = f"{plan.path}:{lines[model.index]}" if model.index in lines else f"panes[{model.index}]"
            out.append(f"pane {pane.id} ({where}): a drill cannot model its query; add to the pane "
                       f"`simulate: {suggestion(pane.unit)}` (or another expression of: {', '.join(MODEL)})")
    return out
