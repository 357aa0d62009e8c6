"""The client half of the engine's local socket: asking this host's engine directly.

On a SQLite state, every command of a client on the engine's host is queued this way (`queue`):
the engine writes it to the store as the person the kernel names. It is also used when the store cannot carry it — a full disk takes no command and lets the engine
renew no heartbeat, a database is out of reach — for the way back (a rollback, a pause) and
for `status` to tell an engine that guards from memory from no engine at all. The wire is
core/local_wire.py; this module imports nothing of the engine.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from warroom.core.identity import Actor
from warroom.core.local_wire import LINE_LIMIT, LocalVerb, address, decode, encode
from warroom.store.base import StoreError, hostname

ANSWER_WAIT = 2.0  # seconds an engine of this host gets to answer (a frozen one holds its socket and never does)
BETWEEN_LINES = 5.0  # seconds without a line while a command runs: the engine sends one every second, or it is gone


@dataclass(frozen=True)
class Ping:
    holder: str  # user@host pid N
    epoch: int
    unrenewed: str  # why its heartbeat cannot be written ("" when it can)
    snapshot: dict[str, Any] | None  # what it publishes, as it sees it now (without the journal)


@dataclass(frozen=True)
class Answer:
    status: str  # done | refused | failed
    message: str


class NotQueued(StoreError):
    """The engine took a command to queue (the client said go) and did not say it did: asking again could run it twice."""


def _lines(sock: socket.socket) -> Iterator[dict[str, Any]]:
    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                return
            buffer += chunk
            if len(buffer) > LINE_LIMIT:
                raise ValueError("a line longer than the wire allows")
        line, buffer = buffer.split(b"\n", 1)
        yield decode(line)


def _connect(state_ref: str, request: dict[str, Any]) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(ANSWER_WAIT)
    try:
        sock.connect(address(state_ref, hostname()))
        sock.sendall(encode(request))
    except OSError:  # no engine of this rollout listens on this host (or it cannot take a connection)
        sock.close()
        return None
    return sock


def ping(state_ref: str) -> Ping | None:
    """What the engine driving this state on this host says of itself; None when none answers."""
    sock = _connect(state_ref, {"verb": LocalVerb.PING.value})
    if sock is None:
        return None
    try:
        answer = next(_lines(sock), None)
    except (OSError, ValueError):
        return None
    finally:
        sock.close()
    if not answer or "holder" not in answer:
        return None
    return Ping(str(answer["holder"]), int(answer.get("epoch") or 0), str(answer.get("unrenewed") or ""), answer.get("snapshot"))


def command(state_ref: str, verb: LocalVerb, args: dict[str, Any], actor: Actor, why: str,
            accepted: Callable[[], None] | None = None) -> Answer | None:
    """Have the engine on this host run a rollback or a pause now, and its outcome (`accepted` is
    called once it took it); None when no engine answers (one that refuses it answers so)."""
    sock = _connect(state_ref, {"verb": verb.value, "args": args, "actor": actor.to_json(), "why": why})
    if sock is None:
        return None
    taken = False
    try:
        for line in _lines(sock):
            if line.get("accepted"):
                taken = True
                sock.settimeout(BETWEEN_LINES)
                if accepted is not None:
                    accepted()
            elif "status" in line:
                return Answer(str(line["status"]), str(line.get("message") or ""))
    except (OSError, ValueError):
        pass
    finally:
        sock.close()
    if not taken:
        return None
    return Answer("failed", f"the engine took the {verb.value} over its local socket at {time.strftime('%H:%M:%S')} and stopped "
                            "answering before its outcome: see `warroom status PLAN`")


def queue(state_ref: str, verb: str, args: dict[str, Any], actor: Actor) -> int | Answer | None:
    """Have this host's engine queue a command in the store as the person the kernel names: its id; the
    answer when the engine would not queue it (refused, or `unwritable`: the store cannot take it); None
    when no engine takes it in time (none listens, or it hangs), so the caller queues it itself.
    NotQueued when the engine was told to go and then went silent."""
    sock = _connect(state_ref, {"verb": LocalVerb.QUEUE.value, "command": verb, "args": args, "actor": actor.to_json()})
    if sock is None:
        return None
    try:
        lines = _lines(sock)
        try:
            first = next(lines, None)
        except (OSError, ValueError):
            return None  # silent in time: it never gets the go, so it never queues it
        if not first or not first.get("ready"):
            return Answer(str(first.get("status") or "refused"), str(first.get("message") or "")) if first else None
        try:
            sock.settimeout(BETWEEN_LINES)
            sock.sendall(encode({"go": True}))
            answer = next(lines, None)
        except (OSError, ValueError):
            answer = None
    finally:
        sock.close()
    if answer and "queued" in answer:
        return int(answer["queued"])
    if answer and "unwritable" in answer:
        return Answer("unwritable", str(answer["unwritable"]))
    if answer and "status" in answer:
        return Answer(str(answer["status"]), str(answer.get("message") or ""))
    raise NotQueued(f"the engine took the {verb} over its local socket at {time.strftime('%H:%M:%S')} and stopped answering "
                    "before saying it queued it: see `warroom status PLAN` before asking again")
