"""Real servers for the Prometheus tests: the `warroom simulate` exporter, the
`prometheus` binary scraping it every second, and tiny loopback HTTP servers that
misbehave on purpose (500s, HTML, slowness, auth)."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.helpers import free_port, require_binary

SCRAPE = 1.0  # seconds; the Prometheus fixture's scrape and evaluation interval


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


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
    flags: Path
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_exporter(flags: Path, *extra: str) -> Exporter:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "warroom", "simulate", "--serve", f"127.0.0.1:{port}", "--flags", str(flags), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    exporter = Exporter(port, flags, proc)
    try:
        wait_until(lambda: proc.poll() is None and http_get(exporter.url + "/-/healthy")[0] == 200, 15, "the exporter")
    except AssertionError:
        _stop(proc)
        raise AssertionError(f"exporter did not start: {proc.stderr.read().decode() if proc.stderr else ''}") from None
    return exporter


@pytest.fixture
def exporter_factory(tmp_path: Path) -> Iterator[Callable[..., Exporter]]:
    started: list[Exporter] = []

    def make(rollout: float = 25.0, *extra: str) -> Exporter:
        flags = tmp_path / f"flags-{len(started)}.json"
        write_flags(flags, rollout)
        started.append(start_exporter(flags, *extra))
        return started[-1]

    yield make
    for exporter in started:
        _stop(exporter.proc)


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
        log = open(self.workdir / "prometheus.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=log, stderr=log,
        )
        log.close()
        try:
            wait_until(lambda: self.proc.poll() is None and http_get(self.url + "/-/ready")[0] == 200, 30, "Prometheus /-/ready")
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

        wait_until(enough, 30, f"{minimum} samples of {query}", every=0.2)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None


@pytest.fixture
def prometheus_factory() -> Iterator[Callable[[list[str]], PrometheusServer]]:
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


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Exporter, PrometheusServer]]:
    """One exporter at 25 % exposure and one Prometheus scraping it, shared by a module."""
    binary = require_binary("prometheus")
    workdir = tmp_path_factory.mktemp("stack")
    write_flags(workdir / "flags.json", 25.0)
    exporter = start_exporter(workdir / "flags.json")
    server = PrometheusServer(binary, workdir, [exporter.target])
    try:
        server.start()
        # rate() over a 10 s window is right once the window is full of samples.
        server.wait_for_data("warroom_sim_http_requests_total", minimum=12)
        yield exporter, server
    finally:
        server.stop()
        _stop(exporter.proc)


# ---------------------------------------------------------------- misbehaving servers

Responder = Callable[[BaseHTTPRequestHandler], tuple[int, str, bytes]]


@dataclass
class FakeServer:
    """A real loopback HTTP server whose answers a test chooses; it counts requests."""

    respond: Responder
    requests: list[dict[str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    scheme: str = "http"

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def http_server() -> Iterator[Callable[[Responder], FakeServer]]:
    made: list[FakeServer] = []

    def make(respond: Responder, tls: tuple[Path, Path] | None = None) -> FakeServer:
        """`tls`: (certificate, key) to serve HTTPS."""
        fake = FakeServer(respond, scheme="https" if tls else "http")

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.requests.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                status, content_type, body = fake.respond(self)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer

        fake.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        fake.server.daemon_threads = True
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            fake.server.socket = context.wrap_socket(fake.server.socket, server_side=True)
        threading.Thread(target=fake.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        made.append(fake)
        return fake

    yield make
    for fake in made:
        assert fake.server is not None
        fake.server.shutdown()
        fake.server.server_close()


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
