"""`warroom simulate --serve HOST:PORT`: the simulator's service as a Prometheus exporter.

The numbers follow the same ServiceModel the in-process simulator source uses, driven by
the flag store's exposure (re-read every second) and the fault schedule, so the PromQL
in `simulator.PROMQL` (rate, histogram_quantile) gives the model's values back through a
real Prometheus. Counters advance by rate × elapsed time at each scrape.

Endpoints:
  GET    /metrics   the exposition (503 while a `dark` fault without a metric is active)
  GET    /fault     the faults the exporter knows (schedule and runtime) as JSON
  POST   /fault     add a fault (a JSON Fault; without `at`/`phase` it starts now)
  DELETE /fault     remove every fault added at runtime (the schedule stays)
  GET    /-/healthy 200 once serving
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import ValidationError

from .plan import Fault, Plan, PlanError, SimulatorSourceConfig, load_faults, load_plan
from .simulator import PROMQL, ServiceModel

# Latency buckets: ×1.2 steps from 2.5 ms to ~13 s, fine enough that
# histogram_quantile resolves p50/p95/p99 between 10 ms and 2 s within a few percent.
BUCKETS: tuple[float, ...] = tuple(round(0.0025 * 1.2**i, 6) for i in range(48))
PODS = ("web-0", "web-1", "web-2")
# Per-pod skew of CPU and memory: the mean is exactly the model's value.
LOAD_SKEW = (0.94, 1.0, 1.06)
# Share of WebSocket connections per pod: sums to 1.
WS_SHARE = (0.31, 0.33, 0.36)
NOT_FOUND_SHARE = 0.004  # 404s: client errors, not counted by the error-rate query
FLAG_REREAD = 1.0  # seconds between reads of the flag store


def latency_cdf(p50: float, p95: float, p99: float) -> list[tuple[float, float]]:
    """Knots (seconds, fraction ≤) of a piecewise-linear latency distribution with these quantiles."""
    # Faults can push one quantile past the next; keep the distribution monotonic.
    p95 = max(p95, p50 * 1.05)
    p99 = max(p99, p95 * 1.05)
    return [(p50 * 0.4, 0.0), (p50, 0.5), (p95, 0.95), (p99, 0.99), (p99 * 1.5, 1.0)]


def cdf_at(knots: list[tuple[float, float]], x: float) -> float:
    if x <= knots[0][0]:
        return 0.0
    for (x0, f0), (x1, f1) in zip(knots, knots[1:]):
        if x <= x1:
            return f0 + (f1 - f0) * (x - x0) / (x1 - x0)
    return 1.0


def cdf_mean(knots: list[tuple[float, float]]) -> float:
    return sum((f1 - f0) * (x0 + x1) / 2 for (x0, f0), (x1, f1) in zip(knots, knots[1:]))


def read_exposure(path: Path, flag: str | None) -> float | None:
    """Exposure 0..1 of `flag` (default: the most exposed flag); None if the file is unreadable."""
    try:
        flags = json.loads(path.read_text(encoding="utf-8"))["flags"]
        exposures = {
            name: (float(entry.get("rollout_percentage", 100.0)) / 100 if entry.get("enabled") else 0.0)
            for name, entry in flags.items()
        }
    except FileNotFoundError:
        return 0.0
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # mid-write or hand-edited badly: keep the last good exposure
    if flag is not None:
        return exposures.get(flag, 0.0)
    return max(exposures.values(), default=0.0)


class ServiceExporter(Collector):
    """The service's counters, histogram and gauges, advanced lazily at each scrape."""

    def __init__(
        self,
        model: ServiceModel,
        flags_path: Path | None,
        flag: str | None = None,
        phase_rollouts: tuple[float, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ):
        self.model = model
        self.schedule = tuple(model.faults)
        self.runtime: list[Fault] = []
        self.flags_path = flags_path
        self.flag = flag
        self.phase_rollouts = phase_rollouts  # the driving flag's % per plan phase
        self.clock = clock
        self.started = self.last = clock()
        self.exposure = 0.0
        self.exposure_read_at = float("-inf")
        self.lock = threading.RLock()  # exposition() holds it around collect()
        self.requests = {"200": 0.0, "404": 0.0, "500": 0.0, "503": 0.0}
        self.buckets = [0.0] * len(BUCKETS)
        self.latency_sum = 0.0
        self.latency_count = 0.0
        self.attempts = {"success": 0.0, "failure": 0.0}
        self.gauges: dict[str, float] = {}

    def t(self) -> float:
        return self.clock() - self.started

    # -- faults at runtime

    def add_fault(self, data: dict[str, Any]) -> Fault:
        if data.get("at") is None and data.get("phase") is None:
            data = {**data, "at": self.t()}
        fault = Fault.model_validate(data)
        with self.lock:
            self.runtime.append(fault)
            self.model.faults = self.schedule + tuple(self.runtime)
        return fault

    def clear_faults(self) -> int:
        with self.lock:
            count, self.runtime = len(self.runtime), []
            self.model.faults = self.schedule
        return count

    def faults_json(self) -> dict[str, Any]:
        with self.lock:
            return {
                "t": self.t(),
                "exposure": self.exposure,
                "schedule": [f.model_dump(exclude_defaults=True) for f in self.schedule],
                "runtime": [f.model_dump(exclude_defaults=True) for f in self.runtime],
            }

    # -- the model over time

    def _refresh_exposure(self, now: float) -> None:
        if self.flags_path is None or now - self.exposure_read_at < FLAG_REREAD:
            return
        self.exposure_read_at = now
        exposure = read_exposure(self.flags_path, self.flag)
        if exposure is not None:
            self.exposure = exposure

    def _phase(self) -> int:
        percent = self.exposure * 100
        if percent <= 0:
            return 0
        return sum(1 for rollout in self.phase_rollouts if rollout <= percent + 1e-9)

    def advance(self) -> None:
        """Add the traffic since the last scrape at the model's current rates."""
        now = self.clock()
        self._refresh_exposure(now)
        t, dt = now - self.started, max(0.0, now - self.last)
        self.last = now
        self.model.observe_phase(self._phase(), t)
        v = {metric: self.model.value(metric, t, self.exposure) for metric in PROMQL}
        total = v["request_rate"] * dt
        errors = total * v["error_rate"]
        self.requests["500"] += errors * 0.7
        self.requests["503"] += errors * 0.3
        self.requests["404"] += (total - errors) * NOT_FOUND_SHARE
        self.requests["200"] += (total - errors) * (1 - NOT_FOUND_SHARE)
        knots = latency_cdf(v["latency_p50"], v["latency_p95"], v["latency_p99"])
        for i, le in enumerate(BUCKETS):
            self.buckets[i] += total * cdf_at(knots, le)
        self.latency_sum += total * cdf_mean(knots)
        self.latency_count += total
        # New WebSocket connections: a steady trickle of polling clients trying to upgrade,
        # plus churn of the live connections (a typical one lasts a minute).
        attempts = (20 + v["ws_connections"] / 60) * dt
        self.attempts["success"] += attempts * v["connection_success"]
        self.attempts["failure"] += attempts * (1 - v["connection_success"])
        self.gauges = {"ws": v["ws_connections"], "cpu": v["cpu"], "memory": v["memory"]}

    def dark(self, metric: str | None = None) -> bool:
        return self.model.is_dark(self.t(), self.exposure, metric)

    def exposition(self, registry: CollectorRegistry) -> bytes | None:
        """The scrape body, or None while the whole service is dark."""
        with self.lock:
            # A fresh exposure first: faults of the new code exist only while it is exposed.
            self._refresh_exposure(self.clock())
            return None if self.dark() else generate_latest(registry)

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            self.advance()
            yield from self._families()

    def _families(self) -> Iterator[Metric]:
        if not (self.dark("error_rate") or self.dark("request_rate")):
            requests = CounterMetricFamily("warroom_sim_http_requests", "HTTP requests served, by status code", labels=["code"])
            for code, count in self.requests.items():
                requests.add_metric([code], count)
            yield requests
        if not any(self.dark(m) for m in ("latency_p50", "latency_p95", "latency_p99")):
            latency = HistogramMetricFamily("warroom_sim_request_duration_seconds", "HTTP request latency")
            cumulative = [(f"{le:g}", count) for le, count in zip(BUCKETS, self.buckets)]
            latency.add_metric([], cumulative + [("+Inf", self.latency_count)], self.latency_sum)
            yield latency
        if not self.dark("connection_success"):
            attempts = CounterMetricFamily("warroom_sim_ws_connect_attempts", "WebSocket connection attempts, by result", labels=["result"])
            for result, count in self.attempts.items():
                attempts.add_metric([result], count)
            yield attempts
        per_pod = [
            ("ws_connections", "warroom_sim_ws_connections", "Open WebSocket connections", "ws", WS_SHARE),
            ("cpu", "warroom_sim_cpu_ratio", "CPU in use, 0..1", "cpu", LOAD_SKEW),
            ("memory", "warroom_sim_memory_ratio", "Memory in use, 0..1", "memory", LOAD_SKEW),
        ]
        for metric, name, help_text, key, weights in per_pod:
            if self.dark(metric):
                continue
            gauge = GaugeMetricFamily(name, help_text, labels=["pod"])
            for pod, weight in zip(PODS, weights):
                gauge.add_metric([pod], self.gauges[key] * weight)
            yield gauge


# ---------------------------------------------------------------- HTTP

def make_server(host: str, port: int, exporter: ServiceExporter) -> ThreadingHTTPServer:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(exporter)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return  # one line per scrape every second would drown the terminal

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, data: Any) -> None:
            self._send(status, json.dumps(data).encode() + b"\n")

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/metrics":
                body = exporter.exposition(registry)
                if body is None:
                    self._send(503, b"simulated outage: the service is dark\n", "text/plain")
                else:
                    self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/fault":
                self._json(200, exporter.faults_json())
            elif path == "/-/healthy":
                self._send(200, b"ok\n", "text/plain")
            else:
                self._send(404, b"try /metrics or /fault\n", "text/plain")

        def do_POST(self) -> None:
            if self.path != "/fault":
                return self._json(404, {"error": "POST /fault with a JSON fault"})
            try:
                data = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if not isinstance(data, dict):
                    raise ValueError("expected a JSON object")
                fault = exporter.add_fault(data)
            except ValidationError as exc:
                first = exc.errors()[0]
                return self._json(400, {"error": f"{'.'.join(map(str, first['loc'])) or 'fault'}: {first['msg']}"})
            except ValueError as exc:
                return self._json(400, {"error": f"not a JSON fault: {exc}"})
            self._json(201, {"added": fault.model_dump(exclude_defaults=True)})

        def do_DELETE(self) -> None:
            if self.path != "/fault":
                return self._json(404, {"error": "DELETE /fault removes the runtime faults"})
            self._json(200, {"removed": exporter.clear_faults()})

    return ThreadingHTTPServer((host, port), Handler)


# ---------------------------------------------------------------- CLI

def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


def add_simulate_parser(subparsers: Any) -> argparse.ArgumentParser:
    help_text = "serve the simulated service as a Prometheus exporter (for rehearsals against a real Prometheus)"
    p = subparsers.add_parser("simulate", help=help_text, description=help_text)
    p.add_argument("--serve", type=_address, metavar="HOST:PORT", help="listen here (port 0: any free port)")
    p.add_argument("--flags", help="the local flag store whose exposure drives the service (default: the plan's)")
    p.add_argument("--flag", help="the flag that drives the service (default: the plan's simulator flag, else the most exposed)")
    p.add_argument("--plan", help="take flag store, flag, seed and faults from this plan")
    p.add_argument("--faults", help="a fault schedule (YAML list); `at` counts from the exporter's start")
    p.add_argument("--seed", type=int, help="noise seed (default: the plan's simulator seed, else 7)")
    p.add_argument("--queries", action="store_true", help="print the PromQL that reads each metric back, and exit")
    return p


def _from_plan(plan: Plan) -> tuple[Path | None, str | None, int | None, tuple[Fault, ...], tuple[float, ...]]:
    provider = plan.flag_provider
    flags_path = plan.resolve_path(getattr(provider, "path", "flags.json")) if provider.provider == "local" else None
    sim = next((s for s in plan.sources.values() if isinstance(s, SimulatorSourceConfig)), None)
    flag = (sim.flag if sim else None) or plan.flag_names()[0]
    faults: tuple[Fault, ...] = ()
    if sim:
        faults = tuple(sim.faults) + (load_faults(plan.resolve_path(sim.faults_file)) if sim.faults_file else ())
    rollouts = tuple(ph.flags[flag].rollout if ph.flags[flag].enabled else 0.0 for ph in plan.phases if flag in ph.flags)
    return flags_path, flag, sim.seed if sim else None, faults, rollouts


def run_simulate(args: argparse.Namespace) -> int:
    if args.queries:
        for metric, query in PROMQL.items():
            print(f"{metric:<20} {query}")
        return 0
    if not args.serve:
        print("warroom simulate: give --serve HOST:PORT (or --queries)", file=sys.stderr)
        return 2
    try:
        flags_path, flag, seed, faults, rollouts = _from_plan(load_plan(args.plan)) if args.plan else (None, None, None, (), ())
        if args.faults:
            faults += load_faults(Path(args.faults))
    except PlanError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    flags_path = Path(args.flags) if args.flags else flags_path
    model = ServiceModel(seed=args.seed if args.seed is not None else seed or 7, faults=faults)
    exporter = ServiceExporter(model, flags_path, args.flag or flag, rollouts)
    host, port = args.serve
    try:
        server = make_server(host, port, exporter)
    except OSError as exc:
        print(f"warroom simulate: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    bound_host, bound_port = server.server_address[:2]
    print(
        f"serving http://{bound_host}:{bound_port}/metrics  flags: {flags_path or 'none (exposure 0)'}"
        f"  flag: {args.flag or flag or 'the most exposed'}  faults: {len(faults)}",
        flush=True,
    )
    # SIGTERM (a test fixture, a service manager) ends as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
