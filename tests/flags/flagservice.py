"""A real flag service on loopback, speaking the seeds' API, that can be told to misbehave.

`POST|PUT /flags/{name}` stores the JSON body, `GET /flags/{name}` returns it (404 when
unknown); every request needs `Authorization: Bearer <token>`. Faults are set by the
test between calls: `fail_status` (answer that status, the next `fail_count` times or
until cleared), `delay` (answer late, for client timeouts), `ignore_writes` (accept a
write but keep the old value: a wrong read-back), `refuse_disable` (answer 503 to writes
that switch a flag off: a rollback that cannot land). Error answers echo the request's
Authorization header, as careless servers do, so redaction is tested for real.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FlagService:
    def __init__(self, token: str):
        self.token = token
        self.flags: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.fail_status: int | None = None
        self.fail_count: int | None = None  # None: until cleared
        self.delay = 0.0
        self.ignore_writes = False
        self.refuse_disable = False
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                return

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, body: Any = None) -> None:
                status, answer = service.handle(self.command, self.path, self.headers.get("Authorization", ""), body)
                try:
                    self._answer(status, answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to tell it

            def do_GET(self) -> None:
                self._handle()

            def _write(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    self._answer(400, {"error": "body is not JSON"})
                    return
                self._handle(body)

            do_POST = do_PUT = do_PATCH = _write

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll interval: shutdown() waits for it, once per test.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def handle(self, method: str, path: str, auth: str, body: Any) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path, body))
            delay, status = self.delay, None
            if self.fail_status is not None:
                status = self.fail_status
                if self.fail_count is not None:
                    self.fail_count -= 1
                    if self.fail_count <= 0:
                        self.fail_status = self.fail_count = None
        if delay:
            time.sleep(delay)
        if auth != f"Bearer {self.token}":
            return 401, {"error": f"bad credentials: {auth}"}
        if status is None and self.refuse_disable and method != "GET" and isinstance(body, dict) and body.get("enabled") is False:
            status = 503
        if status is not None:
            return status, {"error": f"flag backend unavailable (request had {auth})"}
        prefix, _, name = path.partition("/flags/")
        if prefix or not name:
            return 404, {"error": "no such route"}
        with self.lock:
            if method == "GET":
                return (200, self.flags[name]) if name in self.flags else (404, {"error": f"no flag {name}"})
            if not self.ignore_writes:
                self.flags[name] = body
        return 200, {"ok": True}

    def fail(self, status: int, count: int | None = None) -> None:
        with self.lock:
            self.fail_status, self.fail_count = status, count

    def recover(self) -> None:
        with self.lock:
            self.fail_status = self.fail_count = None
            self.delay, self.ignore_writes, self.refuse_disable = 0.0, False, False

    def start(self) -> "FlagService":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
