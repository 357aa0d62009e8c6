"""A real flag service on loopback, speaking the seeds' API, that can be told to misbehave.

`POST|PUT /flags/{name}` stores the JSON body, `GET /flags/{name}` returns it (404 when
unknown); every request needs `Authorization: Bearer <token>`. Faults are set by the
test between calls: `fail_status` (answer that status, the next `fail_count` times or
until cleared), `delay` (answer late, for client timeouts: seconds, or until the test sets
a threading.Event), `ignore_writes` (accept a
write but keep the old value: a wrong read-back), `refuse_disable` (answer 503 to writes
that switch a flag off: a rollback that cannot land). Error answers echo the request's
Authorization header, as careless servers do, so redaction is tested for real.

For races between processes, `fault_writes` makes chosen writes misbehave in time:
`delay` (applied at once, answered late), `drop` (held, then lost: never applied) and
`apply-late` (held past the client's timeout, applied afterwards, the way an overloaded
flag backend finishes work its caller gave up on). A write is held for so many seconds, or
until the test sets a threading.Event: a busy machine cannot stretch the test's moment
past it. Every write is recorded in `writes`:
which process sent it (pid, from the socket), when it arrived, what it asked for, and
when, if ever, it took effect. `hold` keeps chosen writes unanswered until `release()`, then
handles them: a write that left a process which then froze (SIGSTOP), arriving late.

As a flag API can, it fences writers by epoch when `fence_epochs` is set: every write names
the writer's lease epoch (`X-Warroom-Epoch`), and a write of an epoch lower than one already
applied is refused (409, never applied). `OPTIONS` answers with the methods the token may use
(`Allow`); tokens in `read_only_tokens` may only read.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.support.loopback import LoopbackHTTPServer

WRITE_FAULTS = ("delay", "drop", "apply-late", "hold")
EPOCH_HEADER = "X-Warroom-Epoch"


@dataclass
class WriteFault:
    mode: str  # one of WRITE_FAULTS
    held: float | threading.Event  # seconds, or until the test sets it
    when: Callable[[str, Any], bool]  # (flag name, body) -> does this write misbehave
    count: int | None  # writes left to hit; None: until recover()


@dataclass
class Write:
    who: int | None  # pid of the process that sent it (None: could not tell)
    received: float  # time.time()
    name: str
    value: Any  # the JSON body asked for
    fault: str = ""  # the WriteFault mode it met, if any
    applied: float | None = None  # when it took effect; None: never (dropped, ignored, refused)
    epoch: int | None = None  # the writer's lease epoch, as it said (X-Warroom-Epoch)
    refused: str = ""  # why it was refused (a stale epoch)

    def wants(self, **fields: Any) -> bool:
        return isinstance(self.value, dict) and all(self.value.get(k) == v for k, v in fields.items())


def client_pid(client_port: int, server_port: int) -> int | None:
    """Which local process owns the client end of a loopback TCP connection (Linux /proc)."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, remote = fields[1], fields[2]
            if int(local.rsplit(":", 1)[1], 16) == client_port and int(remote.rsplit(":", 1)[1], 16) == server_port:
                inode = fields[9]
                break
    if not inode or inode == "0":
        return None
    target = f"socket:[{inode}]"
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            for fd in os.scandir(fd_dir):
                if os.readlink(fd.path) == target:
                    return int(fd_dir.parent.name)
        except OSError:  # a process that ended meanwhile, or not ours to look into
            continue
    return None


class FlagService:
    def __init__(self, token: str):
        self.token = token
        self.flags: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.fail_status: int | None = None
        self.fail_count: int | None = None  # None: until cleared
        self.delay: float | threading.Event = 0.0
        self.ignore_writes = False
        self.refuse_disable = False
        self.write_faults: list[WriteFault] = []
        self.writes: list[Write] = []
        self.fence_epochs = False
        self.epoch = 0  # the highest epoch a write was applied with
        self.read_only_tokens: set[str] = set()
        self.released = threading.Event()  # lets held writes go on
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

            _pid: int | None = None

            def _who(self) -> int | None:
                # Once per connection (kept alive across requests): the client process is still there.
                if self._pid is None:
                    self._pid = client_pid(self.client_address[1], service.server.server_address[1])
                return self._pid

            def _handle(self, body: Any = None) -> None:
                who = self._who() if self.command != "GET" else None
                epoch = self.headers.get(EPOCH_HEADER)
                status, answer = service.handle(self.command, self.path, self.headers.get("Authorization", ""), body, who,
                                                int(epoch) if epoch and epoch.isdigit() else None)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test): nothing to tell it
                    self._answer(status, answer)

            def do_GET(self) -> None:
                self._handle()

            def do_OPTIONS(self) -> None:
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ")
                if token != service.token and token not in service.read_only_tokens:
                    self._answer(401, {"error": "bad credentials"})
                    return
                self.send_response(204)
                self.send_header("Allow", "GET, OPTIONS" if token in service.read_only_tokens else "GET, POST, PUT, PATCH, OPTIONS")
                self.end_headers()

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

        self.server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll interval: shutdown() waits for it, once per test.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def handle(self, method: str, path: str, auth: str, body: Any, who: int | None = None, epoch: int | None = None) -> tuple[int, Any]:
        prefix, _, name = path.partition("/flags/")
        write = None
        with self.lock:
            self.requests.append((method, path, body))
            if method != "GET":
                write = Write(who, time.time(), name, body, epoch=epoch)
                self.writes.append(write)
            delay, status = self.delay, None
            if self.fail_status is not None:
                status = self.fail_status
                if self.fail_count is not None:
                    self.fail_count -= 1
                    if self.fail_count <= 0:
                        self.fail_status = self.fail_count = None
        if isinstance(delay, threading.Event):
            delay.wait(60)
        elif delay:
            time.sleep(delay)
        if auth.removeprefix("Bearer ") in self.read_only_tokens:
            if write is None:
                auth = f"Bearer {self.token}"
            else:
                return 403, {"error": "this token may only read"}
        if auth != f"Bearer {self.token}":
            return 401, {"error": f"bad credentials: {auth}"}
        if status is None and self.refuse_disable and write is not None and isinstance(body, dict) and body.get("enabled") is False:
            status = 503
        if status is not None:
            return status, {"error": f"flag backend unavailable (request had {auth})"}
        if prefix or not name:
            return 404, {"error": "no such route"}
        if write is None:
            with self.lock:
                return (200, self.flags[name]) if name in self.flags else (404, {"error": f"no flag {name}"})
        with self.lock:
            fault = self._write_fault(name, body)
            write.fault = fault.mode if fault else ""
        if fault is not None and fault.mode == "hold":
            self.released.wait(fault.held if isinstance(fault.held, float | int) else 60)
        with self.lock:
            if self.fence_epochs and write.epoch is not None and write.epoch < self.epoch:
                write.refused = f"stale epoch {write.epoch}: epoch {self.epoch} has written"
                return 409, {"error": write.refused}
            if fault is None or fault.mode in ("delay", "hold"):
                self._apply(write)
        if fault is not None and fault.mode != "hold":
            if isinstance(fault.held, threading.Event):
                fault.held.wait(60)
            else:
                time.sleep(fault.held)
            if fault.mode == "apply-late":
                with self.lock:
                    self._apply(write)
        return 200, {"ok": True}

    def _write_fault(self, name: str, body: Any) -> WriteFault | None:
        for fault in self.write_faults:
            if fault.when(name, body):
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self.write_faults.remove(fault)
                return fault
        return None

    def _apply(self, write: Write) -> None:
        if not self.ignore_writes:
            self.flags[write.name] = write.value
            write.applied = time.time()
            self.epoch = max(self.epoch, write.epoch or 0)

    def release(self) -> None:
        """Let every held write go on (and any held from now on)."""
        self.released.set()

    def fault_writes(self, mode: str, held: float | threading.Event, *, when: Callable[[str, Any], bool] = lambda _n, _b: True,
                     count: int | None = None) -> None:
        """From now on, writes for which `when(name, body)` holds meet `mode` (see the module text)."""
        if mode not in WRITE_FAULTS:
            raise ValueError(f"mode must be one of {WRITE_FAULTS}")
        with self.lock:
            self.write_faults.append(WriteFault(mode, held, when, count))

    def fail(self, status: int, count: int | None = None) -> None:
        with self.lock:
            self.fail_status, self.fail_count = status, count

    def recover(self) -> None:
        with self.lock:
            self.fail_status = self.fail_count = None
            self.delay, self.ignore_writes, self.refuse_disable = 0.0, False, False
            self.write_faults.clear()

    def start(self) -> FlagService:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
