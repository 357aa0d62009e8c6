"""The engine on a real Prometheus scraping the real exporter: an outage of Prometheus
itself, and an injected fault rolled back end to end (how fast: bench/breach_to_off.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.support.servers import Exporter, PrometheusServer, http_send
from tests.support.waiting import until, until_async
from warroom.core.identity import Actor
from warroom.core.lines import status_line
from warroom.engine.build import build_engine
from warroom.engine.engine import Engine
from warroom.plan.load import parse_plan

POLL = 0.5
FOR = 2.0
# Short rate windows keep the test quick; see test_an_injected_fault_is_rolled_back_end_to_end.
ERROR_RATE = 'sum(rate(warroom_sim_http_requests_total{code=~"5.."}[5s])) / sum(rate(warroom_sim_http_requests_total[5s]))'


def plan_text(url: str, flags: Path) -> str:
    return f"""
rollout: {{name: prom-e2e, environment: staging}}
sources:
  service: {{type: prometheus, url: "{url}", timeout: 2s}}
flag_provider: {{provider: local, path: "{flags}"}}
poll_interval: {POLL}s
panes:
  - {{id: error_rate, title: Error rate, unit: ratio, query: '{ERROR_RATE}'}}
  - {{id: cpu, title: CPU, unit: ratio, query: avg(warroom_sim_cpu_ratio)}}
guardrails:
  - {{id: error-rate, pane: error_rate, above: 0.01, for: {FOR:g}s, action: rollback}}
phases:
  - name: Beta 5%
    flags: {{realtime-features: 5}}
    hold: 1h
rollback:
  flags: {{realtime-features: off}}
"""


@pytest.fixture
async def live(exporter_factory, prometheus_factory, tmp_path):
    """Start exporter (at a rollout %), Prometheus scraping it, and a started engine."""
    engines: list[Engine] = []

    async def make(rollout: float) -> tuple[Exporter, PrometheusServer, Engine]:
        exporter = exporter_factory(rollout)
        server = prometheus_factory([exporter.target])
        server.wait_for_data("warroom_sim_http_requests_total", minimum=3)
        plan = parse_plan(plan_text(server.url, exporter.flags), str(tmp_path / "plan.yaml"), tmp_path)
        engines.append(build_engine(plan, state=tmp_path / "state.sqlite"))
        await engines[-1].start()
        return exporter, server, engines[-1]

    yield make
    for engine in engines:
        await engine.close()


def pane(snap, pane_id: str):
    return next(p for p in snap.panes if p.id == pane_id)


async def tick_until(engine: Engine, check, what: str):
    """Tick at the plan's cadence (as the engine's own loop would) until `check(snapshot)` holds."""
    async def ticked():
        snap = await engine.tick()
        return snap if check(snap) else None

    return await until_async(what, ticked, every=POLL, show=lambda: f"last panes: {engine.snapshot.panes}")


@pytest.mark.slow
async def test_prometheus_outage_goes_stale_and_recovers_on_restart(live):
    _, server, engine = await live(25.0)
    snap = await tick_until(engine, lambda s: pane(s, "cpu").status == "ok", "a first CPU value")
    before = pane(snap, "cpu").value

    server.stop()
    snap = await engine.tick()
    cpu = pane(snap, "cpu")
    assert cpu.status == "stale" and cpu.value == before  # last value kept, marked stale
    assert cpu.detail == f"cannot connect to 127.0.0.1:{server.port}: connection refused"
    assert cpu.age is not None and cpu.age >= 0
    assert engine.poller.source_down == {"service": cpu.detail}
    # The error-rate guardrail gets no data and applies its no_data policy (hold by default).
    assert [g.status for g in snap.guardrails] == ["nodata"]
    assert "cpu=" in status_line(snap) and "(stale " in status_line(snap)

    server.start()  # same port, same data directory
    # Backoff is 1 s, 2 s, 4 s …: the source asks again by itself, and recovers.
    await tick_until(engine, lambda s: pane(s, "cpu").status == "ok", "recovery after the restart")
    assert engine.poller.source_down == {}


def flag_enabled(path: Path) -> bool:
    return bool(json.loads(path.read_text())["flags"]["realtime-features"]["enabled"])


@pytest.mark.slow
async def test_an_injected_fault_is_rolled_back_end_to_end(live):
    exporter, _, engine = await live(0.0)
    stop = asyncio.Event()
    runner = None
    try:
        await tick_until(engine, lambda s: pane(s, "error_rate").status == "ok", "a first error rate")
        await engine.step_up(Actor("operator"))
        assert flag_enabled(exporter.flags)
        # The exporter re-reads the flag store every second; the fault lives in the new code.
        until("the exporter to see 5 %", lambda: http_send("GET", exporter.url + "/fault")[1]["exposure"] == 0.05)
        ticked = engine.tick_count
        runner = asyncio.create_task(engine.run(stop))
        # Healthy: the guardrail's whole window and a tick more go by, and nothing rolls back.
        await until_async("the guardrail's window of healthy ticks", lambda: engine.tick_count >= ticked + FOR / POLL + 1)
        assert flag_enabled(exporter.flags)

        status, _ = await asyncio.to_thread(http_send, "POST", exporter.url + "/fault", {"metric": "error_rate", "value": 1.0})
        assert status == 201
        # The new code fails every request of its 5 % cohort, ~6 % of all: the guardrail breaches,
        # holds for FOR and rolls back. How fast, end to end, is bench/breach_to_off.py's to say.
        await until_async("the rollback to turn the flag off", lambda: not flag_enabled(exporter.flags))
        entries = [e for e in engine.store.entries() if e.kind.startswith("rollback")]
        assert entries and "guardrail error-rate" in entries[0].message
    finally:
        stop.set()
        if runner is not None:
            await runner
