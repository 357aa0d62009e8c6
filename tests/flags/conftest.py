"""Real servers for the flag provider tests: a loopback flag service, PostgreSQL and Unleash.

Unleash starts once per session (it dominates the wall time) on a fresh database, with
its admin token bootstrapped by INIT_ADMIN_API_TOKENS and every call home switched off.
unleash-server itself is installed by `.ci/unleash-setup` (run by .ci/install-servers).
"""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import httpx
import pytest
import yaml

from tests.flags.flagservice import FlagService
from tests.helpers import free_port, require_binary
from warroom.engine.build import build_engine
from warroom.clock import VirtualClock
from warroom.engine.engine import Engine
from warroom.identity import Actor
from warroom.plan import parse_plan

ROOT = Path(__file__).resolve().parents[2]
UNLEASH_SERVER = ROOT / ".ci" / "cache" / "unleash" / "node_modules" / "unleash-server" / "dist" / "server.js"
# One database per test session: two sessions on one machine (a developer's and the lead's) never collide.
DB = f"warroom_unleash_test_{os.getpid()}"

# Recognisable secrets: the leak test greps every output for them.
FLAG_TOKEN = "SECRET-TOKEN-7f3a9"
UNLEASH_TOKEN = "*:*.SECRET-UNLEASH-7f3a9"
OPERATOR = Actor(user="oncall", host="bastion", ssh_client="10.0.0.9", tty="pts/1")


def missing(message: str) -> None:
    """A missing server fails in CI and skips on a developer machine, like require_binary."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


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


# ------------------------------------------------------------------ PostgreSQL + Unleash

def _psql(sql: str, port: int) -> str:
    return subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-p", str(port), "-v", "ON_ERROR_STOP=1", "-tAc", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A running cluster with an empty database for Unleash; yields its DATABASE_URL."""
    if not (Path("/usr/bin/pg_lsclusters").exists() and os.geteuid() == 0):
        missing("PostgreSQL (Debian postgresql-15) and root are needed to start it (.ci/install-servers)")
    line = subprocess.run(["pg_lsclusters", "-h"], check=True, capture_output=True, text=True).stdout.split("\n")[0].split()
    if not line:
        missing("no PostgreSQL cluster (apt-get install postgresql creates one)")
    version, cluster, port, status = line[0], line[1], int(line[2]), line[3]
    if status != "online":
        subprocess.run(["pg_ctlcluster", version, cluster, "start"], check=True, capture_output=True)
    if not _psql("SELECT 1 FROM pg_roles WHERE rolname = 'warroom'", port):
        _psql("CREATE ROLE warroom LOGIN PASSWORD 'warroom'", port)
    # A fresh database each session: migrations take seconds and no state leaks between runs.
    _psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", port)
    _psql(f"CREATE DATABASE {DB} OWNER warroom", port)
    yield f"postgres://warroom:warroom@127.0.0.1:{port}/{DB}"
    _psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", port)


@pytest.fixture(scope="session")
def unleash(postgres, tmp_path_factory) -> Iterator[str]:
    """unleash-server on a free loopback port; yields its base URL."""
    node = require_binary("node")
    if not UNLEASH_SERVER.exists():
        missing(f"unleash-server is not installed at {UNLEASH_SERVER.relative_to(ROOT)} (run .ci/unleash-setup)")
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path_factory.mktemp("unleash-home")),
        "DATABASE_URL": postgres,
        "DATABASE_SSL": "false",
        "INIT_ADMIN_API_TOKENS": UNLEASH_TOKEN,
        "CHECK_VERSION": "false",
        "SEND_TELEMETRY": "false",
        "TZ": "UTC",
        "HTTP_PORT": str(port),
        "HTTP_HOST": "127.0.0.1",
        "LOG_LEVEL": "warn",
    }
    log_path = tmp_path_factory.mktemp("unleash-log") / "unleash.log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([node, str(UNLEASH_SERVER)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                cwd=UNLEASH_SERVER.parents[3])
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"unleash-server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=1).json().get("health") == "GOOD":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() - started > 120:
                pytest.fail(f"unleash-server not healthy after 120 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        print(f"\nunleash-server healthy after {time.monotonic() - started:.1f} s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def unleash_token(monkeypatch) -> str:
    monkeypatch.setenv("WARROOM_TEST_UNLEASH_TOKEN", UNLEASH_TOKEN)
    return "env:WARROOM_TEST_UNLEASH_TOKEN"


@pytest.fixture
def unleash_admin(unleash) -> Iterator[httpx.Client]:
    """A plain Admin API client, for what a human would do in the Unleash UI."""
    with httpx.Client(base_url=f"{unleash}/api/admin/projects/default", headers={"Authorization": UNLEASH_TOKEN}) as client:
        yield client


@pytest.fixture
def unleash_feature(unleash_admin) -> str:
    """A new feature (unique per test, the database lives for the session), off in every environment."""
    name = f"realtime-{uuid.uuid4().hex[:8]}"
    unleash_admin.post("/features", json={"name": name, "type": "release"}).raise_for_status()
    return name


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
        for phase, pct in zip(data["phases"], (5, 25, 50)):
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
