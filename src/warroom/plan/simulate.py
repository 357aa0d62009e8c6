"""The simulator's words in a plan: its metrics and their units, the `simulate:` grammar, a segment's share.

A drill answers a plan's queries from the built-in simulator: a fault names one of its
metrics, a pane says what it models with `simulate:` (a metric, or arithmetic of metrics
and numbers). These words are plan language, checked when the plan loads; the simulator
(sources/simulator) imports them from here and gives each metric its numbers.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

from warroom.core.flagstate import FlagState

# metric -> the unit of its numbers, in the order the simulator lists them.
METRICS: dict[str, str] = {
    "error_rate": "ratio",
    "latency_p50": "seconds",
    "latency_p95": "seconds",
    "latency_p99": "seconds",
    "ws_connections": "count",
    "connection_success": "ratio",
    "cpu": "ratio",
    "memory": "ratio",
    "request_rate": "count",
    # Sessions started per second: the units a flag assigns to a cohort (the exposure check).
    "session_rate": "count",
}

# A flag limited to user segments (staff, beta) exposes its rollout of those segments only;
# each segment counts as this share of all traffic (100 % of staff ≈ 1 % of users).
SEGMENT_SHARE = 0.01


def modelled_exposure(state: FlagState | None) -> float:
    """The share of users on the new code (0..1) for a flag state, segments counted as SEGMENT_SHARE each."""
    if state is None:
        return 0.0
    if state.segments:
        return state.exposure * min(1.0, SEGMENT_SHARE * len(state.segments))
    return state.exposure


_OPS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}
SIMULATE_HELP = ("a simulator metric (" + ", ".join(METRICS) + ") or arithmetic of them and numbers "
                 "with + - * / and parentheses, e.g. `latency_p95 * 1000`")


@dataclass(frozen=True)
class Expression:
    """A parsed `simulate:` expression; `evaluate` asks `value(metric)` for each metric it names."""

    text: str
    tree: ast.expr
    metrics: tuple[str, ...]

    def evaluate(self, value: Callable[[str], float]) -> float:
        def walk(node: ast.expr) -> float:
            if isinstance(node, ast.Constant):
                assert isinstance(node.value, (int, float))  # parse_expression admits numbers only
                return float(node.value)
            if isinstance(node, ast.Name):
                return value(node.id)
            if isinstance(node, ast.UnaryOp):
                inner = walk(node.operand)
                return -inner if isinstance(node.op, ast.USub) else inner
            assert isinstance(node, ast.BinOp)
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                return math.nan
            return _OPS[type(node.op)](left, right)

        return walk(self.tree)


def parse_expression(text: str) -> Expression:
    """Parse a `simulate:` expression; ValueError says what is wrong with it."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # ValueError: a NUL byte in the text
        raise ValueError(f"not an expression: expected {SIMULATE_HELP}") from None
    metrics: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id not in METRICS:
                raise ValueError(f"unknown simulator metric {node.id!r} (the simulator has: {', '.join(METRICS)})")
            metrics.append(node.id)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise ValueError(f"only numbers and metric names: expected {SIMULATE_HELP}")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _OPS:
                raise ValueError(f"only + - * / are allowed: expected {SIMULATE_HELP}")
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise ValueError(f"only + - * / are allowed: expected {SIMULATE_HELP}")
        elif not isinstance(node, (ast.operator, ast.unaryop, ast.expr_context)):
            raise ValueError(f"only numbers, metric names, + - * / and parentheses: expected {SIMULATE_HELP}")
    if not metrics:
        raise ValueError(f"name at least one simulator metric: expected {SIMULATE_HELP}")
    return Expression(text.strip(), tree, tuple(dict.fromkeys(metrics)))


def _metric(metric: str) -> str:
    if metric not in METRICS:
        # A misspelt metric would be a fault that never happens: a drill that proves nothing.
        raise ValueError(f"unknown metric (the simulator has: {', '.join(METRICS)})")
    return metric


def _simulate(text: str) -> str:
    return parse_expression(text).text


SimMetric = Annotated[str, AfterValidator(_metric)]
# A pane's model for drills: a simulator metric or arithmetic of them (`latency_p95 * 1000`).
SimulateExpression = Annotated[str, AfterValidator(_simulate)]
