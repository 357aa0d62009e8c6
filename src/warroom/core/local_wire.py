"""The engine's local socket, as both ends speak it: where it is, and the lines on it.

The driving engine listens on an abstract unix stream socket of this host named after the
rollout's state. The kernel proves who connects (SO_PEERCRED's uid and pid, and the login
uid of that pid); the engine records every command that comes this way as that person. On a
SQLite state — a file that anyone who may write it can write any name into — it is how every
command of a client on the engine's host reaches the engine: the engine queues it in the
store for the person the kernel named (`queue`), and it is run like any other. It is also
the way when the store cannot carry what must be said — a disk too full to take a command
(or the engine's heartbeat), a database out of reach: a rollback or a pause goes straight to
the engine, and `status` asks whether the engine still runs.

One JSON object a line, UTF-8. The client sends one request:
  {"verb": "ping" | "rollback" | "pause" | "approve" | "reject", "args": {…}, "actor": {…as the client declares it}, "why": "…"}
  {"verb": "queue", "command": "<any Verb>", "args": {…}, "actor": {…}}
The engine answers a ping with one line {"holder", "epoch", "unrenewed", "snapshot"}; a
command with {"accepted": true}, then {"waiting": true} every second while it runs, then
{"status": "done" | "refused" | "failed", "message": "…"}; a request it refuses with just
the status line. A `queue` is two-step, so that a command is queued once whatever happens:
the engine answers {"ready": true}; the client sends {"go": true} (or, hearing nothing in
time, closes and queues it in the store itself: the engine never got the go); the engine
queues it and answers {"queued": id} — or {"unwritable": "…"} when the store cannot take it,
or the status line of a refusal (a command too large).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import Enum
from typing import Any


class LocalVerb(str, Enum):  # noqa: UP042  (as State: the value is what goes on the wire)
    PING = "ping"  # is the engine there, and what does it see (its snapshot)
    ROLLBACK = "rollback"
    PAUSE = "pause"
    APPROVE = "approve"
    REJECT = "reject"
    QUEUE = "queue"  # any command, queued in the store by the engine for the person the kernel names


COMMANDS = (LocalVerb.ROLLBACK, LocalVerb.PAUSE)  # the way back never waits on a disk: only these go this way
# A sign-off counts only from a proven person: with a store that cannot prove its sender (SQLite), these
# go only this way, where the kernel names the sender (SO_PEERCRED, the login uid).
SIGN_OFFS = (LocalVerb.APPROVE, LocalVerb.REJECT)
LINE_LIMIT = 256 * 1024  # bytes of one line (a ping's snapshot is the longest)
UNSET_LOGINUID = 4294967295  # /proc/PID/loginuid of a process no login session started (a daemon)


def address(state_ref: str, host: str) -> bytes:
    """The abstract socket of the engine driving the state `state_ref` names (a file path, or a
    database's `url (rollout name)`) on `host` (the name leases record: processes that stand for
    other hosts in a test share one kernel, not one host), the same from every process of it."""
    import hashlib  # here: a console attaching (which imports this wire) asks no engine this way before its first frame

    key = state_ref if "://" in state_ref else os.path.realpath(state_ref)  # `./launch.sqlite` and its full path alike
    return b"\0warroom-engine-" + hashlib.sha1(f"{host}\0{key}".encode()).hexdigest()[:32].encode()


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, sort_keys=True, default=str).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """One line as sent; ValueError when it is not one JSON object."""
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    return message


@dataclass(frozen=True)
class Peer:
    """Who is at the other end of a local connection, as the kernel proves it (never as declared)."""

    uid: int
    pid: int
    gid: int
    user: str  # the uid's name on this host ("uid1234" without one)
    loginuid: int | None = None  # the login session's user (audit), when a login started the process

    def to_json(self) -> dict[str, Any]:
        return {"uid": self.uid, "pid": self.pid, "gid": self.gid, "user": self.user, "loginuid": self.loginuid}

    def label(self) -> str:
        login = f", logged in as uid {self.loginuid}" if self.loginuid is not None and self.loginuid != self.uid else ""
        return f"{self.user} (uid {self.uid}, pid {self.pid}{login})"
