"""Fixtures shared by the whole suite: small real plans on the simulator and local flags."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from warroom.engine.build import build_engine
from warroom.clock import VirtualClock
from warroom.identity import Actor
from warroom.plan import parse_plan
from tests.terminal import tmux  # noqa: F401  (the tmux fixture, for every folder of tests)

ALICE = Actor(user="alice", host="bastion", ssh_client="10.0.0.7", tty="pts/3")

BASE_PLAN = textwrap.dedent(
    """
    rollout: {name: test-launch, environment: staging}
    sources:
      sim: {type: simulator, seed: 1, flag: feature, noise: 0}
    flag_provider: {provider: local, path: flags.json}
    state: state.sqlite
    poll_interval: 5s
    panes:
      - {id: errors, title: Error rate, query: error_rate, unit: ratio, warn: 0.001, breach: 0.01}
      - {id: p95, title: Latency p95, query: latency_p95, unit: seconds, warn: 0.1, breach: 0.5}
    guardrails:
      - {id: errors, pane: errors, above: 0.01, for: 30s, action: rollback}
    phases:
      - name: Canary 5%
        flags: {feature: 5}
        hold: 1m
        gates: [{name: errors low, pane: errors, below: 0.001}]
        checklist:
          - {text: Dashboards checked, required: true}
          - Support briefed
      - name: Half 50%
        flags: {feature: 50}
        hold: 1m
      - name: Full 100%
        flags: {feature: 100}
        hold: 0s
    """
)


def write_plan(tmp_path: Path, changes: dict | None = None, text: str = BASE_PLAN) -> Path:
    """The base plan with top-level keys replaced, written where its state and flags live."""
    data = yaml.safe_load(text)
    data.update(changes or {})
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load(tmp_path: Path, changes: dict | None = None):
    path = write_plan(tmp_path, changes)
    return parse_plan(path.read_text(), str(path), tmp_path)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=1_800_000_000.0)


@pytest.fixture
async def make_engine(tmp_path, clock):
    """Build a real engine (simulator, local flag file, SQLite) on a variant of BASE_PLAN."""
    engines = []

    async def make(changes: dict | None = None, **kw):
        plan = load(tmp_path, changes)
        engine = build_engine(plan, clock=kw.pop("clock", clock), **kw)
        await engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.close()


@pytest.fixture(autouse=True)
def no_engine_left_behind(request):
    """Engines a test started detached (`up`, a console, `rollback` with none alive) outlive it
    by design; stop every one still holding the lease of a state file in the test's folder."""
    folder = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if folder is not None:
        from tests.engines import stop_engines

        stop_engines(folder)
