"""Real servers for the flag provider tests: a loopback flag service here; PostgreSQL and
Unleash in tests/conftest.py (the drills' trio test needs them too)."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import UNLEASH_TOKEN  # noqa: F401 (moved to tests/conftest.py; imported from here by test modules)
from tests.flags.flagservice import FlagService
from warroom.core.clock import VirtualClock
from warroom.core.identity import Actor
from warroom.engine.build import build_engine
from warroom.engine.engine import Engine
from warroom.plan.load import parse_plan

ROOT = Path(__file__).resolve().parents[2]

# Recognisable secrets: the leak test greps every output for them.
FLAG_TOKEN = "SECRET-TOKEN-7f3a9"
OPERATOR = Actor(user="oncall", host="bastion", ssh_client="10.0.0.9", tty="pts/1")


# ------------------------------------------------------------------ loopback flag service

@pytest.fixture
def flag_token(monkeypatch) -> str:
    monkeypatch.setenv("WARROOM_TEST_FLAG_TOKEN", FLAG_TOKEN)
    return "env:WARROOM_TEST_FLAG_TOKEN"


@pytest.fixture
def flag_service(flag_token) -> Iterator[FlagService]:
    service = FlagService(FLAG_TOKEN).start()
    yield service
    service.stop()


# ------------------------------------------------------------------ the engine on a provider

PLAN = textwrap.dedent(
    """
    rollout: {name: flags-test, environment: staging}
    sources:
      sim: {type: simulator, seed: 1, noise: 0}
    state: state.sqlite
    poll_interval: 5s
    panes:
      - {id: errors, title: Error rate, query: error_rate, unit: ratio}
    phases:
      - {name: Beta 5%, flags: {}, hold: 0s}
      - {name: Beta 25%, flags: {}, hold: 0s}
      - {name: Rollout 50%, flags: {}, hold: 0s}
    """
)


@pytest.fixture
async def make_flag_engine(tmp_path) -> AsyncIterator[Callable[..., Any]]:
    """A real engine (simulator, SQLite, virtual clock) driving `flag` 5 → 25 → 50 % through a provider."""
    engines: list[Engine] = []

    async def make(provider: dict[str, Any], flag: str, **changes: Any) -> Engine:
        data = yaml.safe_load(PLAN)
        data.update(changes)
        data["flag_provider"] = provider
        for phase, pct in zip(data["phases"], (5, 25, 50), strict=True):
            phase["flags"] = {flag: pct}
        path = tmp_path / "plan.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        engine = build_engine(parse_plan(path.read_text(), str(path), tmp_path), clock=VirtualClock())
        await engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.close()
