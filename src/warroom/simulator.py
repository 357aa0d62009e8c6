"""A deterministic model of the service under launch.

Used two ways: in-process by the `simulator` source (the demo and drills), and as a
Prometheus exporter (`warroom simulate --serve`). Every metric responds to the flags'
exposure and to injected faults; the same seed, time and exposure always give the
same numbers.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # plan.py validates fault metrics against MODEL: the simulator must not import it back
    from .plan import Fault

# metric -> (unit, baseline at 0 % exposure, added at 100 % exposure)
MODEL: dict[str, tuple[str, float, float]] = {
    "error_rate": ("ratio", 0.0004, 0.0004),
    "latency_p50": ("seconds", 0.018, 0.012),
    "latency_p95": ("seconds", 0.060, 0.030),
    "latency_p99": ("seconds", 0.120, 0.060),
    "ws_connections": ("count", 0.0, 12000.0),
    "connection_success": ("ratio", 0.998, -0.002),
    "cpu": ("ratio", 0.30, 0.20),
    "memory": ("ratio", 0.45, 0.15),
    "request_rate": ("count", 850.0, 150.0),
}

# Ratios near 1 whose noise lives in their complement (the failures).
SUCCESS_RATIOS = {"connection_success"}

# The PromQL that gives each metric from the exporter, so a plan written for the
# exporter (real PromQL) also runs against the in-process simulator unchanged.
PROMQL: dict[str, str] = {
    "error_rate": 'sum(rate(warroom_sim_http_requests_total{code=~"5.."}[30s])) / sum(rate(warroom_sim_http_requests_total[30s]))',
    "latency_p50": "histogram_quantile(0.50, sum by (le) (rate(warroom_sim_request_duration_seconds_bucket[30s])))",
    "latency_p95": "histogram_quantile(0.95, sum by (le) (rate(warroom_sim_request_duration_seconds_bucket[30s])))",
    "latency_p99": "histogram_quantile(0.99, sum by (le) (rate(warroom_sim_request_duration_seconds_bucket[30s])))",
    "ws_connections": "sum(warroom_sim_ws_connections)",
    "connection_success": 'sum(rate(warroom_sim_ws_connect_attempts_total{result="success"}[30s])) / sum(rate(warroom_sim_ws_connect_attempts_total[30s]))',
    "cpu": "avg(warroom_sim_cpu_ratio)",
    "memory": "avg(warroom_sim_memory_ratio)",
    "request_rate": "sum(rate(warroom_sim_http_requests_total[30s]))",
}

_SPACES = re.compile(r"\s+")


def _normal(query: str) -> str:
    return _SPACES.sub("", query)


_BY_QUERY = {_normal(q): name for name, q in PROMQL.items()}


def metric_for_query(query: str) -> str | None:
    """The model metric a query asks for: a bare metric name or its canonical PromQL."""
    q = query.strip()
    if q in MODEL:
        return q
    return _BY_QUERY.get(_normal(q))


@dataclass
class ServiceModel:
    seed: int = 7
    noise: float = 0.05
    faults: tuple[Fault, ...] = ()

    def __post_init__(self) -> None:
        self._phase_seen: dict[int, float] = {}

    def observe_phase(self, phase: int, started: float) -> None:
        """Remember when each phase started so phase-relative faults start on time.

        Phases stepped through faster than the model was asked count as starting together.
        """
        for p in range(1, phase + 1):
            self._phase_seen.setdefault(p, started)

    def _fault_window(self, fault: Fault) -> tuple[float, float] | None:
        if fault.at is not None:
            start = fault.at
        else:
            seen = self._phase_seen.get(fault.phase or 0)
            if seen is None:
                return None
            start = seen + fault.after
        end = start + fault.duration if fault.duration is not None else float("inf")
        return start, end

    def active_faults(self, t: float, exposure: float) -> list[tuple[Fault, float]]:
        """(fault, progress 0..1 through its duration) for faults live at time t."""
        out = []
        for fault in self.faults:
            window = self._fault_window(fault)
            if window is None:
                continue
            start, end = window
            if not (start <= t < end):
                continue
            # A fault in the new code is only there while someone is exposed to it.
            if fault.while_exposed and exposure <= 0:
                continue
            progress = 0.0 if end == float("inf") else (t - start) / (end - start)
            out.append((fault, progress))
        return out

    def is_dark(self, t: float, exposure: float, metric: str | None = None) -> bool:
        return any(
            f.mode == "dark" and (f.metric is None or f.metric == metric) for f, _ in self.active_faults(t, exposure)
        )

    def baseline(self, metric: str, exposure: float) -> float:
        _, base, slope = MODEL[metric]
        return base + slope * exposure

    def value(self, metric: str, t: float, exposure: float) -> float:
        """The metric at time t (seconds since start) with `exposure` (0..1) of traffic on the feature."""
        value = self.baseline(metric, exposure)
        rng = random.Random(f"{self.seed}:{metric}:{int(t)}")
        jitter = self.noise * (rng.random() * 2 - 1)
        if metric in SUCCESS_RATIOS:
            value = 1 - (1 - value) * (1 + 4 * jitter)  # noise on the failures, not on the near-1 ratio
        else:
            value *= 1 + jitter
        for fault, progress in self.active_faults(t, exposure):
            if fault.metric != metric:
                continue
            if fault.mode == "set":
                value = fault.value
            elif fault.mode == "add":
                value += fault.value
            elif fault.mode == "multiply":
                value *= fault.value
            elif fault.mode == "ramp":
                value += (fault.value - value) * min(1.0, progress)
            elif fault.mode == "spike":
                # Up to the peak at mid-window and back down.
                value += (fault.value - value) * (1 - abs(2 * progress - 1))
        unit = MODEL[metric][0]
        if unit == "ratio":
            value = min(1.0, max(0.0, value))
        return max(0.0, value)
