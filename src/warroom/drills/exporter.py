"""`warroom simulate --serve HOST:PORT`: the simulator's service as a Prometheus exporter.

The numbers follow the same ServiceModel the in-process simulator source uses, driven by
the exposure of the plan's own flag — read every second through the plan's own flag
provider (local, http, Unleash, flagd), the same code the engine uses — and the fault
schedule, so the PromQL in `simulator.PROMQL` (rate, histogram_quantile) gives the
model's values back through a real Prometheus, and a rollback really ends a fault of the
new code. Traffic is split into two cohorts by the exposure: requests, latency,
connections and sessions carry a `cohort="new"|"control"` label (sessions count the users
the flag assigns, which the exposure check tests the split on). Counters advance by
rate × elapsed time at each scrape. `--ignore-flag` plays a flag that does not reach the
service: it is read and reported, but every user stays on the old code.

Endpoints:
  GET    /metrics   the exposition (503 while a `dark` fault without a metric is active)
  GET    /fault     the faults the exporter knows (schedule and runtime), the flag and exposure seen
  POST   /fault     add a fault (a JSON Fault; without `at`/`phase` it starts now)
  DELETE /fault     remove every fault added at runtime (the schedule stays)
  GET    /-/healthy 200 once serving
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import ValidationError

from warroom.core.flagstate import FlagState
from warroom.core.secrets import SecretError, redact
from warroom.core.text import terminal_safe
from warroom.flags.base import FlagError, FlagProvider
from warroom.flags.registry import UnknownProvider, make_provider
from warroom.plan.faults import Fault, load_faults
from warroom.plan.load import load_plan
from warroom.plan.model import Plan
from warroom.plan.simulate import modelled_exposure
from warroom.plan.sources import FlagProviderConfig, SimulatorSourceConfig
from warroom.plan.yamlfile import PlanError
from warroom.sources.simulator.model import (
    COHORT_PROMQL,
    COHORTS,
    PROMQL,
    ServiceModel,
    cdf_at,
    cdf_mean,
    fault_scope,
)

# Latency buckets: ×1.2 steps from 2.5 ms to ~13 s, fine enough that
# histogram_quantile resolves p50/p95/p99 between 10 ms and 2 s within a few percent.
BUCKETS: tuple[float, ...] = tuple(round(0.0025 * 1.2**i, 6) for i in range(48))
PODS = ("web-0", "web-1", "web-2")
# Per-pod skew of CPU and memory: the mean is exactly the model's value.
LOAD_SKEW = (0.94, 1.0, 1.06)
# Share of WebSocket connections per pod: sums to 1.
WS_SHARE = (0.31, 0.33, 0.36)
NOT_FOUND_SHARE = 0.004  # 404s: client errors, not counted by the error-rate query
FLAG_REREAD = 1.0  # seconds between reads of the flag


class ExposureFollower:
    """The driving flag's exposure, read through a flag provider every second on a thread of its own.

    A failed read keeps the last good exposure (and says so once); without a flag name,
    the local store's most exposed flag drives the service.
    """

    def __init__(self, provider: FlagProvider, flag: str | None, every: float = FLAG_REREAD,
                 log: Callable[[str], None] = lambda line: print(terminal_safe(line), file=sys.stderr, flush=True)):
        self.provider = provider
        self.flag = flag
        self.every = every
        self.log = log
        self.state: FlagState | None = None
        self.exposure = 0.0
        self.error = ""
        self.read_once = threading.Event()  # set after the first read, good or not
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="warroom-exposure", daemon=True)

    def start(self) -> ExposureFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    async def _names(self) -> list[str]:
        if self.flag is not None:
            return [self.flag]
        path = getattr(self.provider, "path", None)  # the local store: every flag in it
        try:
            return list(json.loads(Path(path).read_text(encoding="utf-8"))["flags"]) if path else []
        except (OSError, ValueError, KeyError, TypeError):
            return []

    async def _read(self) -> None:
        try:
            results = await self.provider.read_many(await self._names())
        except Exception as exc:  # a provider must not raise here; if one does, it is a failed read
            results = {self.flag or "flags": FlagError(redact(f"{type(exc).__name__}: {exc}"))}
        errors = [f"{name}: {r.reason}" for name, r in results.items() if isinstance(r, FlagError)]
        if errors:
            if not self.error:
                self.log(f"flags: cannot read {'; '.join(errors)}; keeping exposure {self.exposure:.2%}")
            self.error = "; ".join(errors)
            return
        if self.error:
            self.log("flags: readable again")
        self.error = ""
        states = {name: r for name, r in results.items() if isinstance(r, FlagState)}
        self.state = max(states.values(), key=modelled_exposure, default=None)
        self.exposure = modelled_exposure(self.state)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            while not self._stop.is_set():
                loop.run_until_complete(self._read())
                self.read_once.set()
                self._stop.wait(self.every)
            loop.run_until_complete(self.provider.close())
        finally:
            loop.close()


class ServiceExporter(Collector):
    """The service's counters, histogram and gauges per cohort, advanced lazily at each scrape."""

    def __init__(
        self,
        model: ServiceModel,
        follower: ExposureFollower | None,
        phase_exposures: tuple[float, ...] = (),
        clock: Callable[[], float] = time.monotonic,
        ignore_flag: bool = False,
    ):
        self.model = model
        # A flag that does not reach the service: it is read and reported, but every user stays on the old code.
        self.ignore_flag = ignore_flag
        self.schedule = tuple(model.faults)
        self.runtime: list[Fault] = []
        self.follower = follower
        self.phase_exposures = phase_exposures  # the driving flag's modelled exposure (%) per plan phase
        self.clock = clock
        self.started = self.last = clock()
        self.lock = threading.RLock()  # exposition() holds it around collect()
        self.requests = {(code, c): 0.0 for c in COHORTS for code in ("200", "404", "500", "503")}
        self.buckets = {c: [0.0] * len(BUCKETS) for c in COHORTS}
        self.latency_sum = dict.fromkeys(COHORTS, 0.0)
        self.latency_count = dict.fromkeys(COHORTS, 0.0)
        self.attempts = {(result, c): 0.0 for c in COHORTS for result in ("success", "failure")}
        self.sessions = dict.fromkeys(COHORTS, 0.0)
        self.connections = dict.fromkeys(COHORTS, 0.0)
        self.load: dict[str, float] = {}

    @property
    def exposure(self) -> float:
        """The share of users the service puts on the new code."""
        if self.follower is None or self.ignore_flag:
            return 0.0
        return self.follower.exposure

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
        def listed(faults) -> list[dict[str, Any]]:
            return [{**f.model_dump(exclude_defaults=True), "scope": fault_scope(f)} for f in faults]

        follower = self.follower
        with self.lock:
            return {
                "t": self.t(),
                "exposure": self.exposure,
                "flag_ignored": self.ignore_flag,
                "flag": follower.flag if follower else None,
                "flag_state": follower.state.label() if follower and follower.state else None,
                "flags_error": follower.error if follower else "",
                "phase": self._phase(),
                "schedule": listed(self.schedule),
                "runtime": listed(self.runtime),
            }

    # -- the model over time

    def _phase(self) -> int:
        # The flag's own exposure says which phase the rollout is in, even when the service ignores it.
        percent = (self.follower.exposure if self.follower is not None else 0.0) * 100
        if percent <= 0:
            return 0
        return sum(1 for exposure in self.phase_exposures if exposure <= percent + 1e-9)

    def advance(self) -> None:
        """Add each cohort's traffic since the last scrape at the model's current rates."""
        now = self.clock()
        t, dt = now - self.started, max(0.0, now - self.last)
        self.last = now
        self.model.observe_phase(self._phase(), t)
        service = self.model.service(t, self.exposure)
        for cohort in service.cohorts:
            c, v = cohort.name, cohort.values
            total = cohort.requests * dt
            errors = total * v["error_rate"]
            self.requests[("500", c)] += errors * 0.7
            self.requests[("503", c)] += errors * 0.3
            self.requests[("404", c)] += (total - errors) * NOT_FOUND_SHARE
            self.requests[("200", c)] += (total - errors) * (1 - NOT_FOUND_SHARE)
            knots = cohort.latency_knots()
            for i, le in enumerate(BUCKETS):
                self.buckets[c][i] += total * cdf_at(knots, le)
            self.latency_sum[c] += total * cdf_mean(knots)
            self.latency_count[c] += total
            attempts = cohort.attempts * dt
            self.attempts[("success", c)] += attempts * v["connection_success"]
            self.attempts[("failure", c)] += attempts * (1 - v["connection_success"])
            self.connections[c] = cohort.connections
            self.sessions[c] += cohort.share * v["session_rate"] * dt
        # The pods serve both cohorts: their CPU and memory are the service's.
        self.load = {"cpu": service.value("cpu"), "memory": service.value("memory")}

    def dark(self, metric: str | None = None) -> bool:
        return self.model.is_dark(self.t(), self.exposure, metric)

    def exposition(self, registry: CollectorRegistry) -> bytes | None:
        """The scrape body, or None while the whole service is dark."""
        with self.lock:
            return None if self.dark() else generate_latest(registry)

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            self.advance()
            yield from self._families()

    def _families(self) -> Iterator[Metric]:
        if not (self.dark("error_rate") or self.dark("request_rate")):
            requests = CounterMetricFamily("warroom_sim_http_requests", "HTTP requests served, by status code and cohort",
                                           labels=["code", "cohort"])
            for (code, cohort), count in self.requests.items():
                requests.add_metric([code, cohort], count)
            yield requests
        if not any(self.dark(m) for m in ("latency_p50", "latency_p95", "latency_p99")):
            latency = HistogramMetricFamily("warroom_sim_request_duration_seconds", "HTTP request latency, by cohort",
                                            labels=["cohort"])
            for cohort in COHORTS:
                cumulative = [(f"{le:g}", count) for le, count in zip(BUCKETS, self.buckets[cohort], strict=True)]
                latency.add_metric([cohort], cumulative + [("+Inf", self.latency_count[cohort])], self.latency_sum[cohort])
            yield latency
        if not self.dark("connection_success"):
            attempts = CounterMetricFamily("warroom_sim_ws_connect_attempts", "WebSocket connection attempts, by result and cohort",
                                           labels=["result", "cohort"])
            for (result, cohort), count in self.attempts.items():
                attempts.add_metric([result, cohort], count)
            yield attempts
        if not self.dark("session_rate"):
            sessions = CounterMetricFamily("warroom_sim_sessions", "User sessions started, by the cohort the flag put them in",
                                           labels=["cohort"])
            for cohort in COHORTS:
                sessions.add_metric([cohort], self.sessions[cohort])
            yield sessions
        if not self.dark("ws_connections") and self.load:
            gauge = GaugeMetricFamily("warroom_sim_ws_connections", "Open WebSocket connections, by pod and cohort",
                                      labels=["pod", "cohort"])
            for cohort in COHORTS:
                for pod, weight in zip(PODS, WS_SHARE, strict=True):
                    gauge.add_metric([pod, cohort], self.connections[cohort] * weight)
            yield gauge
        for metric, name, help_text in (("cpu", "warroom_sim_cpu_ratio", "CPU in use, 0..1"),
                                        ("memory", "warroom_sim_memory_ratio", "Memory in use, 0..1")):
            if self.dark(metric) or not self.load:
                continue
            gauge = GaugeMetricFamily(name, help_text, labels=["pod"])
            for pod, weight in zip(PODS, LOAD_SKEW, strict=True):
                gauge.add_metric([pod], self.load[metric] * weight)
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
    p.add_argument("--plan", help="follow this plan's flag provider and flag; take seed and faults from it")
    p.add_argument("--flags", help="a local flag store (JSON) to follow instead of the plan's flag provider")
    p.add_argument("--flag", help="the flag that drives the service (default: the plan's simulator flag, else its first "
                                  "flag; with --flags alone, the most exposed flag in the store)")
    p.add_argument("--faults", help="a fault schedule (YAML list); `at` counts from the exporter's start")
    p.add_argument("--seed", type=int, help="noise seed (default: the plan's simulator seed, else 7)")
    p.add_argument("--ignore-flag", action="store_true",
                   help="a flag that does not reach the service: read and report it, but keep every user on the old code "
                        "(rehearses the exposure check)")
    p.add_argument("--queries", action="store_true", help="print the PromQL that reads each metric back, and exit")
    return p


def _from_plan(plan: Plan) -> tuple[int | None, tuple[Fault, ...]]:
    sim = next((s for s in plan.sources.values() if isinstance(s, SimulatorSourceConfig)), None)
    if sim is None:
        return None, ()
    return sim.seed, tuple(sim.faults) + (load_faults(plan.resolve_path(sim.faults_file)) if sim.faults_file else ())


def _follower(args: argparse.Namespace, plan: Plan | None) -> ExposureFollower | None:
    """The plan's own flag provider (or the --flags store), read the way the engine reads it."""
    if args.flags:
        config = FlagProviderConfig.model_validate({"provider": "local", "path": str(Path(args.flags).resolve())})
        provider, flag = make_provider(config, Path(".")), args.flag or (plan.driving_flag() if plan else None)
    elif plan is not None:
        provider, flag = make_provider(plan.flag_provider, plan.base_dir), args.flag or plan.driving_flag()
    else:
        return None
    return ExposureFollower(provider, flag)


def run_simulate(args: argparse.Namespace) -> int:
    if args.queries:
        for metric, query in PROMQL.items():
            print(f"{metric:<20} {query}")
        print("\nby cohort ({cohort} is new or control), for cohort guardrails, minimum evidence and the exposure check:")
        for name, query in COHORT_PROMQL.items():
            print(f"{name:<20} {query}")
        return 0
    if not args.serve:
        print("warroom simulate: give --serve HOST:PORT (or --queries)", file=sys.stderr)
        return 2
    try:
        plan = load_plan(args.plan) if args.plan else None
        seed, faults = _from_plan(plan) if plan else (None, ())
        if args.faults:
            faults += load_faults(Path(args.faults))
        follower = _follower(args, plan)
    except PlanError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except (SecretError, UnknownProvider, ValidationError) as exc:
        print(f"warroom simulate: {redact(str(exc))}", file=sys.stderr)
        return 1
    model = ServiceModel(seed=args.seed if args.seed is not None else seed or 7, faults=faults)
    exposures = tuple(plan.phase_exposures(follower.flag if follower else None)) if plan else ()
    exporter = ServiceExporter(model, follower, exposures, ignore_flag=args.ignore_flag)
    host, port = args.serve
    try:
        server = make_server(host, port, exporter)
    except OSError as exc:
        print(f"warroom simulate: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if follower is not None:
        follower.start().read_once.wait(10)  # the banner line says what the flag reads now
        seen = follower.error or (follower.state.label() if follower.state else "no such flag yet")
        flags = (f"{follower.provider.describe()}  flag: {follower.flag or 'the most exposed'} "
                 f"({seen}; exposure {exporter.exposure:.2%})")
        if args.ignore_flag:
            flags += "  IGNORED: the flag does not reach the service, every user stays on the old code"
    else:
        flags = "none (exposure 0: give --plan or --flags)"
    bound_host, bound_port = server.socket.getsockname()[:2]
    # The flag's state and a provider's error are a server's words: no escape sequence of theirs reaches the terminal.
    print(terminal_safe(f"serving http://{bound_host}:{bound_port}/metrics  flags: {flags}  faults: {len(faults)}"), flush=True)
    # SIGTERM (a test fixture, a service manager) ends as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if follower is not None:
            follower.stop()
    return 0
