"""A deterministic model of the service under launch, as two cohorts of users.

Traffic is split by the flag's exposure: a share `e` of users runs the new code (the
**new** cohort), the rest the old code (the **control** cohort). Each metric is worked
out per cohort, and the service's number is what a real Prometheus computes from the
two: errors over requests, latency quantiles of the mixed distribution, connections
summed. So a fault in the new code (the default, `while_exposed: true`) changes only
the new cohort: it moves the service by about `e` of its size and is gone when the
flags go off; a fault in a shared dependency (`while_exposed: false`) hits both.

Used two ways: in-process by the `simulator` source (the demo and drills), and as a
Prometheus exporter (`warroom simulate --serve`) whose series carry a `cohort` label.
The same seed, time and exposure always give the same numbers.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from itertools import pairwise

from warroom.plan.faults import Fault
from warroom.plan.simulate import METRICS

COHORTS = ("control", "new")

# metric -> (control cohort, new cohort): each cohort's number as if every user were in it.
_COHORT_VALUES: dict[str, tuple[float, float]] = {
    "error_rate": (0.0004, 0.0008),
    "latency_p50": (0.018, 0.030),
    "latency_p95": (0.060, 0.090),
    "latency_p99": (0.120, 0.180),
    "ws_connections": (0.0, 12000.0),
    "connection_success": (0.998, 0.996),
    "cpu": (0.30, 0.50),
    "memory": (0.45, 0.60),
    "request_rate": (850.0, 1000.0),
    # Sessions: the same for both cohorts per user, so each cohort's share of them is the exposure.
    "session_rate": (200.0, 200.0),
}
# metric -> (unit, control cohort, new cohort); the metrics and their units are the plan's words (plan/simulate.py).
MODEL: dict[str, tuple[str, float, float]] = {metric: (unit, *_COHORT_VALUES[metric]) for metric, unit in METRICS.items()}
LATENCY = {"latency_p50": 0.50, "latency_p95": 0.95, "latency_p99": 0.99}

# Ratios near 1 whose noise lives in their complement (the failures).
SUCCESS_RATIOS = {"connection_success"}

# WebSocket connection attempts per second: a steady trickle of clients trying to upgrade,
# plus churn of the live connections (a typical one lasts a minute).
CONNECT_TRICKLE = 20.0
CONNECTION_LIFETIME = 60.0

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
    "session_rate": "sum(rate(warroom_sim_sessions_total[30s]))",
}

# The same for one cohort (`{cohort}`: new or control), as a cohort guardrail and the exposure check ask them.
COHORT_PROMQL: dict[str, str] = {
    "error_rate": 'sum(rate(warroom_sim_http_requests_total{code=~"5..", cohort="{cohort}"}[30s])) '
                  '/ sum(rate(warroom_sim_http_requests_total{cohort="{cohort}"}[30s]))',
    "latency_p95": 'histogram_quantile(0.95, sum by (le) (rate(warroom_sim_request_duration_seconds_bucket{cohort="{cohort}"}[30s])))',
    "requests": 'sum(increase(warroom_sim_http_requests_total{cohort="{cohort}"}[30s]))',
    "sessions": 'sum(increase(warroom_sim_sessions_total{cohort="{cohort}"}[1m]))',
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


# ---------------------------------------------------------------- latency distributions

def latency_cdf(p50: float, p95: float, p99: float) -> list[tuple[float, float]]:
    """Knots (seconds, fraction ≤) of a piecewise-linear latency distribution with these quantiles."""
    # Faults can push one quantile past the next; keep the distribution monotonic.
    p95 = max(p95, p50 * 1.05)
    p99 = max(p99, p95 * 1.05)
    return [(p50 * 0.4, 0.0), (p50, 0.5), (p95, 0.95), (p99, 0.99), (p99 * 1.5, 1.0)]


def cdf_at(knots: list[tuple[float, float]], x: float) -> float:
    if x <= knots[0][0]:
        return 0.0
    for (x0, f0), (x1, f1) in pairwise(knots):
        if x <= x1:
            return f0 + (f1 - f0) * (x - x0) / (x1 - x0)
    return 1.0


def cdf_mean(knots: list[tuple[float, float]]) -> float:
    return sum((f1 - f0) * (x0 + x1) / 2 for (x0, f0), (x1, f1) in pairwise(knots))


def mixture_quantile(q: float, parts: list[tuple[float, list[tuple[float, float]]]]) -> float:
    """The q-quantile of a mix of piecewise-linear distributions, (weight, knots) each.

    Between the union of all knots the mixed CDF is linear, so the answer is exact.
    """
    parts = [(w, k) for w, k in parts if w > 0]
    total = sum(w for w, _ in parts)
    xs = sorted({x for _, knots in parts for x, _ in knots})
    prev_x, prev_f = xs[0], 0.0
    for x in xs:
        f = sum(w * cdf_at(knots, x) for w, knots in parts) / total
        if f >= q:
            return x if f == prev_f else prev_x + (x - prev_x) * (q - prev_f) / (f - prev_f)
        prev_x, prev_f = x, f
    return xs[-1]


# ---------------------------------------------------------------- the two cohorts

@dataclass(frozen=True)
class Cohort:
    """One cohort's numbers (as if every user were in it) and its share of users."""

    name: str
    share: float
    values: dict[str, float]

    @property
    def requests(self) -> float:
        """Requests per second this cohort sends."""
        return self.share * self.values["request_rate"]

    @property
    def attempts(self) -> float:
        """WebSocket connection attempts per second from this cohort."""
        return self.share * (CONNECT_TRICKLE + self.values["ws_connections"] / CONNECTION_LIFETIME)

    @property
    def connections(self) -> float:
        return self.share * self.values["ws_connections"]

    def latency_knots(self) -> list[tuple[float, float]]:
        return latency_cdf(self.values["latency_p50"], self.values["latency_p95"], self.values["latency_p99"])


@dataclass(frozen=True)
class Service:
    """Both cohorts at one instant; `value` is the service's number as Prometheus would compute it."""

    control: Cohort
    new: Cohort

    @property
    def cohorts(self) -> tuple[Cohort, Cohort]:
        return self.control, self.new

    def cohort_value(self, metric: str, cohort: str) -> float:
        """One cohort's `metric` as Prometheus gives it from that cohort's series alone."""
        c = self.new if cohort == "new" else self.control
        if metric in ("request_rate", "session_rate", "ws_connections"):
            return c.share * c.values[metric]  # traffic and connections: the cohort's own part
        if metric in ("cpu", "memory"):
            return self.value(metric)  # the pods serve both cohorts
        return c.values[metric]  # ratios and latency: as if every user were in this cohort

    def value(self, metric: str) -> float:
        if metric in LATENCY:
            parts = [(c.requests, c.latency_knots()) for c in self.cohorts]
            if sum(w for w, _ in parts) <= 0:
                return self.control.values[metric]
            return mixture_quantile(LATENCY[metric], parts)
        if metric == "error_rate":
            weights = [c.requests for c in self.cohorts]
        elif metric == "connection_success":
            weights = [c.attempts for c in self.cohorts]
        else:
            # Traffic, connections and the pods' CPU and memory add up over the cohorts.
            return sum(c.share * c.values[metric] for c in self.cohorts)
        total = sum(weights)
        if total <= 0:
            return self.control.values[metric]
        return sum(w * c.values[metric] for w, c in zip(weights, self.cohorts, strict=True)) / total


def _apply(fault: Fault, value: float, progress: float) -> float:
    if fault.mode == "set":
        return fault.value
    if fault.mode == "add":
        return value + fault.value
    if fault.mode == "multiply":
        return value * fault.value
    if fault.mode == "ramp":
        return value + (fault.value - value) * min(1.0, progress)
    if fault.mode == "spike":
        # Up to the peak at mid-window and back down.
        return value + (fault.value - value) * (1 - abs(2 * progress - 1))
    return value


def fault_scope(fault: Fault) -> str:
    """Which kind of fault, in words: the journal, the card and the exporter say it."""
    if fault.while_exposed:
        return "new code: scales with exposure, a rollback clears it"
    return "shared dependency: hits every user, a rollback does not clear it"


@dataclass
class ServiceModel:
    seed: int = 7
    noise: float = 0.05
    faults: tuple[Fault, ...] = ()

    def __post_init__(self) -> None:
        self._phase_seen: dict[int, float] = {}
        self._last: tuple[tuple, Service] | None = None  # the last instant worked out: panes ask it several times

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

    def service(self, t: float, exposure: float) -> Service:
        """Both cohorts at time t (seconds since start) with `exposure` (0..1) of users on the new code."""
        key = (t, exposure, self.faults, len(self._phase_seen))
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        exposure = min(1.0, max(0.0, exposure))
        active = self.active_faults(t, exposure)
        cohorts = []
        for name, share in (("control", 1 - exposure), ("new", exposure)):
            values = {}
            for metric, (unit, control, new) in MODEL.items():
                value = control if name == "control" else new
                # One draw per metric and second, shared by the cohorts: the noise is the service's.
                jitter = self.noise * (random.Random(f"{self.seed}:{metric}:{int(t)}").random() * 2 - 1)
                if metric in SUCCESS_RATIOS:
                    value = 1 - (1 - value) * (1 + 4 * jitter)  # noise on the failures, not on the near-1 ratio
                else:
                    value *= 1 + jitter
                for fault, progress in active:
                    # A fault in the new code lives in the new cohort; a shared one in both.
                    if fault.metric == metric and (name == "new" or not fault.while_exposed):
                        value = _apply(fault, value, progress)
                if unit == "ratio":
                    value = min(1.0, value)
                values[metric] = max(0.0, value)
            cohorts.append(Cohort(name, share, values))
        service = Service(*cohorts)
        self._last = (key, service)
        return service

    def value(self, metric: str, t: float, exposure: float) -> float:
        """The service's `metric` at time t with `exposure` (0..1) of users on the new code."""
        return self.service(t, exposure).value(metric)
