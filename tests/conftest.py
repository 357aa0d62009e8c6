"""Fixtures shared by the whole suite: small real plans on the simulator and local flags, and
the real servers more than one test package needs (Prometheus; PostgreSQL and Unleash).

Unleash starts once per session (it dominates the wall time) on a fresh database, with
its admin token bootstrapped by INIT_ADMIN_API_TOKENS and every call home switched off.
unleash-server itself is installed by `.ci/unleash-setup` (run by .ci/install-servers).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.helpers import free_port, missing, require_binary
from tests.support.servers import STORE_PASSWORD, PostgresMissing, PrometheusServer, postgres_database, start_postgres
from tests.support.terminal import tmux  # noqa: F401  (the tmux fixture, for every folder of tests)
from tests.support.waiting import DEADLINE, until
from warroom.core.clock import VirtualClock
from warroom.core.identity import Actor
from warroom.engine.build import build_engine
from warroom.plan.load import parse_plan
from warroom.plan.state import PostgresState

ALICE = Actor(user="alice", host="bastion", ssh_client="10.0.0.7", tty="pts/3")

# `make test-fast` leaves out what is `slow`. Besides tests marked so, these folders and files
# start real processes (engines, CLI verbs, exporters, tmux, Chromium, sshd logins) or drive the console
# under a pilot with an engine thread (seconds each); so does every test that needs a real
# server (the fixtures below, and the store contract on PostgreSQL).
SLOW_PATHS = ("process/", "races/", "tui/", "people/", "prometheus/test_exporter.py", "prometheus/test_live.py",
              "prometheus/test_cohorts.py", "prometheus/test_trickle.py", "prometheus/test_results.py",
              "flags/test_secrets.py", "test_cli.py", "test_hostile_text.py", "test_hostile_files.py",
              "test_damaged_state.py", "test_bench_smoke.py", "page/test_access.py", "page/test_one_truth.py",
              "page/test_page_in_chromium.py", "page/test_read_only.py", "page/test_viewers.py",
              "page/test_signoffs_and_freezes.py")
REAL_SERVERS = {"prometheus_factory", "stack", "exporter_factory", "postgres_cluster", "unleash", "tmux"}
# Fixtures that cost seconds each time a worker first needs one (Unleash and its migrations, the module's
# Prometheus, the million-entry and the damaged journals). `make test` runs with `--dist loadgroup`: every
# test using one goes to the same worker, so the suite pays for it once, not once per worker.
ONCE_PER_WORKER = {"unleash", "stack", "million", "damaged"}
TESTS = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        where = item.path.relative_to(TESTS).as_posix()
        params = item.callspec.params if hasattr(item, "callspec") else {}
        fixtures = set(getattr(item, "fixturenames", ()))
        if where.startswith(SLOW_PATHS) or REAL_SERVERS & fixtures or params.get("store_ref") == "postgresql":
            item.add_marker(pytest.mark.slow)
        for name in sorted(ONCE_PER_WORKER & fixtures):
            item.add_marker(pytest.mark.xdist_group(name))

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
        from tests.support.engines import stop_engines

        stop_engines(folder)
# ------------------------------------------------------------------ TLS (Prometheus, the status page)

@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (certificate, key)."""
    openssl = require_binary("openssl")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True,
    )
    return d / "cert.pem", d / "key.pem"

# ------------------------------------------------------------------ Prometheus

@pytest.fixture
def prometheus_factory() -> Iterator[Callable[[list[str]], PrometheusServer]]:
    """make(targets) → a real Prometheus scraping them every second (tests.support.servers.SCRAPE)."""
    binary = require_binary("prometheus")
    servers: list[PrometheusServer] = []
    dirs: list[str] = []

    def make(targets: list[str]) -> PrometheusServer:
        dirs.append(tempfile.mkdtemp(prefix="warroom-prom-"))
        servers.append(PrometheusServer(binary, Path(dirs[-1]), targets))
        servers[-1].start()
        return servers[-1]

    yield make
    for server in servers:
        server.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


ROOT = Path(__file__).resolve().parents[1]
UNLEASH_SERVER = ROOT / ".ci" / "cache" / "unleash" / "node_modules" / "unleash-server" / "dist" / "server.js"
# One database per test session: two sessions on one machine (a developer's and the lead's) never collide.
DB = f"warroom_unleash_test_{os.getpid()}"
# Recognisable: the leak tests grep every output for it.
UNLEASH_TOKEN = "*:*.SECRET-UNLEASH-7f3a9"


# ------------------------------------------------------------------ PostgreSQL + Unleash

@pytest.fixture(scope="session")
def postgres_cluster() -> int:
    """Debian's cluster running (started if down) with the roles the tests log in as; its port."""
    try:
        return start_postgres()
    except PostgresMissing as exc:
        missing(str(exc))  # fails in CI, skips elsewhere: it never returns


PG_PASSWORD = "WARROOM_TEST_PG_PASSWORD"  # the environment variable the stores' `password: env:…` names


@pytest.fixture(scope="session")
def pg_state(postgres_cluster) -> Iterator[PostgresState]:
    """warroom's own store on PostgreSQL: a database for the session; key it by a rollout of each test's own."""
    os.environ[PG_PASSWORD] = STORE_PASSWORD
    with postgres_database(postgres_cluster, f"warroom_store_test_{os.getpid()}") as url:
        yield PostgresState(url=url, password=f"env:{PG_PASSWORD}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_ref(request, tmp_path) -> Path | PostgresState:
    """Where a rollout's store is, on each backend (a contract test runs on both)."""
    if request.param == "sqlite":
        return tmp_path / "state.sqlite"
    return request.getfixturevalue("pg_state").keyed(f"test-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def postgres(postgres_cluster) -> Iterator[str]:
    """An empty database for Unleash; yields its DATABASE_URL."""
    # A fresh database each session: migrations take seconds and no state leaks between runs.
    with postgres_database(postgres_cluster, DB, owner="warroom") as url:
        yield url.replace("postgresql://warroom@", "postgres://warroom:warroom@")


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
        def healthy() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"unleash-server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            return httpx.get(f"{url}/health", timeout=1).json().get("health") == "GOOD"

        # Migrations on a first start take 10–25 s on an idle machine.
        until("unleash-server healthy", healthy, timeout=2 * DEADLINE, every=0.25, retry_on=(httpx.HTTPError, ValueError),
              show=lambda: log_path.read_text()[-3000:])
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
