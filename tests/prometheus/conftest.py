"""Real servers for the Prometheus tests: the `warroom simulate` exporter, the
`prometheus` binary scraping it every second, and tiny loopback HTTP servers that
misbehave on purpose (500s, HTML, slowness, auth)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import require_binary
from tests.support.loopback import LoopbackHTTPServer
from tests.support.servers import Exporter, PrometheusServer, _stop, start_exporter, write_flags


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
    server: LoopbackHTTPServer | None = None
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

        fake.server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
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


@dataclass
class TrickleServer:
    """A real loopback server that sends a valid Prometheus answer one byte a second.

    Every read the client makes gets a byte in time, so a per-read timeout never fires:
    only a deadline on the whole request ends it. `hangups` holds, per connection, the
    seconds from its request to the moment the client hung up.
    """

    sock: socket.socket
    hangups: list[float] = field(default_factory=list)
    requests: int = 0
    interval: float = 1.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            self.requests += 1
            asked = time.monotonic()
            try:
                for byte in TRICKLED:
                    conn.sendall(bytes([byte]))
                    time.sleep(self.interval)
            except OSError:  # the client hung up: when is what the tests measure
                self.hangups.append(time.monotonic() - asked)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed at the end of the test
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()


_ANSWER = b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"0.25"]}]}}'
TRICKLED = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(_ANSWER), _ANSWER)


@pytest.fixture
def trickle_server() -> Iterator[TrickleServer]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = TrickleServer(sock)
    threading.Thread(target=server._accept, daemon=True).start()
    yield server
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
    sock.close()
