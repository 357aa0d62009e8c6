"""A real HTTP server on loopback whose answers a test chooses, recording every request.

For what a well-behaved fake cannot show: redirects to another origin, 429 with
Retry-After, receivers that echo the request they got into an error answer. Reach one
server under two origins with `url` (127.0.0.1) and `other_origin_url` (localhost):
another host name, so anything that must not cross hosts can be watched arriving.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic() when it arrived


Answer = tuple[int, dict[str, str], bytes]  # status, headers, body


class LoopbackHTTPServer(ThreadingHTTPServer):
    """The test servers' HTTP server: a thread per request, and a listen backlog that takes a
    whole tick of queries at once. With the standard library's 5, a burst of connections on a
    busy machine overflows it; the kernel drops the SYNs and the clients retry after a full
    second, which a source with a 1 s timeout reports as a timeout."""

    daemon_threads = True
    request_queue_size = 128


@dataclass
class Loopback:
    respond: Callable[[Request], Answer]
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                server.requests.append(request)
                status, headers, answer = server.respond(request)
                try:
                    self.send_response(status)
                    for name, value in {"Content-Length": str(len(answer)), **headers}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def other_origin_url(self) -> str:
        return f"http://localhost:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def redirect_to(target: str, status: int = 301) -> Callable[[Request], Answer]:
    """Answer every request with a redirect to `target` + the request's path."""
    return lambda request: (status, {"Location": target + request.path}, b"")


@contextlib.contextmanager
def serving(respond: Callable[[Request], Answer]) -> Iterator[Loopback]:
    server = Loopback(respond)
    try:
        yield server
    finally:
        server.stop()


def ok_json(body: bytes = b"{}") -> Callable[[Request], Answer]:
    return lambda request: (200, {"Content-Type": "application/json"}, body)
