"""Starting the real servers warroom is tested and benchmarked against: the `warroom
simulate` exporter, the `prometheus` binary scraping it, and Debian's PostgreSQL cluster. Plain Python (no pytest), so
bench/ uses the same code as the fixtures."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.helpers import free_port
from tests.support.waiting import until

SCRAPE = 1.0  # seconds; the Prometheus fixture's scrape and evaluation interval


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_send(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def alive(proc: subprocess.Popen) -> bool:
    """True while `proc` runs; a server that exited will never answer: no use waiting for it."""
    if proc.poll() is not None:
        raise AssertionError(f"exited with {proc.returncode}")
    return True


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- the exporter

def write_flags(path: Path, rollout: float, flag: str = "realtime-features") -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"flags": {flag: {"enabled": rollout > 0, "rollout_percentage": rollout, "user_segments": []}}}))
    os.replace(tmp, path)


@dataclass
class Exporter:
    port: int
    flags: Path | None  # the local store it follows; None: the plan's own flag provider (--plan)
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_exporter(flags: Path | None, *extra: str) -> Exporter:
    port = free_port()
    follow = ["--flags", str(flags)] if flags is not None else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "warroom", "simulate", "--serve", f"127.0.0.1:{port}", *follow, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    exporter = Exporter(port, flags, proc)
    try:
        until("the exporter to answer", lambda: alive(proc) and http_get(exporter.url + "/-/healthy")[0] == 200,
              retry_on=(OSError,))
    except AssertionError:
        _stop(proc)
        raise AssertionError(f"exporter did not start: {proc.stderr.read().decode() if proc.stderr else ''}") from None
    return exporter



# ---------------------------------------------------------------- Prometheus

@dataclass
class PrometheusServer:
    binary: str
    workdir: Path
    targets: list[str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or restart, same port and data dir) and wait until it answers queries."""
        config = self.workdir / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": f"{SCRAPE:g}s", "evaluation_interval": f"{SCRAPE:g}s", "scrape_timeout": "900ms"},
            "scrape_configs": [{"job_name": "warroom-sim", "static_configs": [{"targets": self.targets}]}],
        }))
        with open(self.workdir / "prometheus.log", "ab") as log:  # the child has its own copy of the descriptor
            self.proc = subprocess.Popen(
                [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=log,
            )
        try:
            until("Prometheus /-/ready", lambda: alive(self.proc) and http_get(self.url + "/-/ready")[0] == 200,
                  retry_on=(OSError,))
        except AssertionError:
            self.stop()
            raise AssertionError("Prometheus did not start:\n" + (self.workdir / "prometheus.log").read_text()[-2000:]) from None

    def wait_for_data(self, query: str = "up", minimum: int = 1) -> None:
        """Wait until `query` has at least `minimum` samples of history (rate() needs two)."""
        url = f"{self.url}/api/v1/query?query=" + urllib.parse.quote(f"count_over_time(({query})[1m:1s])")

        def enough() -> bool:
            status, body = http_get(url)
            result = json.loads(body)["data"]["result"] if status == 200 else []
            return bool(result) and float(result[0]["value"][1]) >= minimum

        until(f"{minimum} samples of {query}", enough, every=0.2, retry_on=(OSError,))

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None


def queries_answered(prometheus_url: str) -> float:
    """Instant queries a Prometheus server has answered so far: its own counter
    (`prometheus_http_requests_total{handler="/api/v1/query"}`), read from its /metrics page, which is
    not a query, so reading it counts nothing."""
    status, body = http_get(f"{prometheus_url}/metrics")
    assert status == 200, body
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
               if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query"' in line)


# ------------------------------------------------------------------ PostgreSQL

class PostgresMissing(Exception):
    """No PostgreSQL cluster can be started here; the message says what is missing."""


def _psql(sql: str, port: int, db: str = "postgres") -> str:
    return subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-p", str(port), "-d", db, "-v", "ON_ERROR_STOP=1", "-qtAc", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


@contextmanager
def operator_roles(port: int, db: str, *names: str, password: Callable[[str], str | None] = lambda _: None) -> Iterator[None]:
    """Login roles of operators (a password each, or none: peer authentication), dropped afterwards.
    Grant them what an operator needs with `grant_operators` once warroom's schema exists."""
    for name in names:
        pw = password(name)
        _psql(f"CREATE ROLE {name} LOGIN" + (f" PASSWORD '{pw}'" if pw else ""), port, db)
    try:
        yield
    finally:
        for name in names:
            _psql(f"DROP OWNED BY {name}; DROP ROLE IF EXISTS {name}", port, db)


def grant_operators(port: int, db: str, *names: str) -> None:
    """What an operator's role needs (README, People and sign-offs): read the store, queue commands."""
    for name in names:
        _psql(f"GRANT USAGE ON SCHEMA warroom TO {name}; GRANT SELECT ON ALL TABLES IN SCHEMA warroom TO {name}; "
              f"GRANT INSERT ON warroom.commands TO {name}; GRANT USAGE ON ALL SEQUENCES IN SCHEMA warroom TO {name}", port, db)


# warroom's own store logs in as a role of its own: its password is remembered for redaction in
# the test process, so it must not be a word that appears in ordinary text (as `warroom` does).
STORE_ROLE, STORE_PASSWORD = "warroom_store", "Store-Test-5d2e9a"


def start_postgres() -> int:
    """Debian's cluster running (started if down) with the roles `warroom` (password `warroom`, Unleash's)
    and STORE_ROLE; its port."""
    if not (Path("/usr/bin/pg_lsclusters").exists() and os.geteuid() == 0):
        raise PostgresMissing("PostgreSQL (Debian postgresql-15) and root are needed to start it (.ci/install-servers)")
    line = subprocess.run(["pg_lsclusters", "-h"], check=True, capture_output=True, text=True).stdout.split("\n")[0].split()
    if not line:
        raise PostgresMissing("no PostgreSQL cluster (apt-get install postgresql creates one)")
    version, cluster, port, status = line[0], line[1], int(line[2]), line[3]
    if status != "online":
        # Test workers (and other runs) start at once: another may have started it meanwhile.
        started = subprocess.run(["pg_ctlcluster", version, cluster, "start"], capture_output=True, text=True)
        if started.returncode and "online" not in subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout:
            raise PostgresMissing(f"PostgreSQL {version}/{cluster} did not start: {started.stderr.strip()}")
    for role, password in (("warroom", "warroom"), (STORE_ROLE, STORE_PASSWORD)):
        if not _psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'", port):
            with contextlib.suppress(subprocess.CalledProcessError):  # another worker created it first
                _psql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'", port)
    return port


@contextmanager
def postgres_database(port: int, name: str, owner: str = STORE_ROLE) -> Iterator[str]:
    """A fresh database owned by `owner`, dropped afterwards; yields its URL without the password."""
    _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", port)
    _psql(f"CREATE DATABASE {name} OWNER {owner}", port)
    try:
        yield f"postgresql://{owner}@127.0.0.1:{port}/{name}"
    finally:
        _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", port)
