"""Who owns a pending action, and when another process may take it over.

An action (a step up, a rollback) belongs to the process that committed its intent
until that process is provably gone. On this host that is checked for real: the pid no
longer exists, or it now belongs to a process that started later (pids are reused).
On any host the owner renews a heartbeat while it works; once that expires the owner
counts as gone too (a frozen process, or one on a host we cannot see into).
A process that closes cleanly hands its unfinished actions over at once.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

# Wall-clock seconds an owner's heartbeat lasts; it renews every ACTION_TTL / 6.
ACTION_TTL = 30.0

# Engines alive in this process (one process may hold several: a drill, tests): an owner
# in this very process is gone once its engine closed.
_LIVE: set[str] = set()


def process_started(pid: int) -> int | None:
    """When a process started, in clock ticks since boot (Linux /proc); None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name (field 2) may hold spaces, so count from its ')'.
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    started: int | None  # see process_started
    engine: str = ""  # which engine of that process

    @classmethod
    def this_process(cls) -> "Owner":
        """A new owner for an engine of this process, alive until retire()."""
        owner = cls(socket.gethostname(), os.getpid(), process_started(os.getpid()), uuid.uuid4().hex[:8])
        _LIVE.add(owner.engine)
        return owner

    def retire(self) -> None:
        _LIVE.discard(self.engine)

    def to_json(self) -> str:
        return json.dumps({"host": self.host, "pid": self.pid, "started": self.started, "engine": self.engine}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> "Owner | None":
        if not text:
            return None
        data = json.loads(text)
        return cls(str(data["host"]), int(data["pid"]), data.get("started"), str(data.get("engine", "")))

    def label(self) -> str:
        return f"pid {self.pid} on {self.host}"

    def provably_gone(self) -> bool:
        """True only when this host can prove the owner process no longer runs."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # it exists, under another user
        now_started = process_started(self.pid)
        if self.started is not None and now_started is not None and now_started != self.started:
            return True  # the pid was reused by a later process
        return self.pid == os.getpid() and self.engine not in _LIVE


def may_adopt(owner: Owner | None, expires: float | None, now: float) -> bool:
    """Whether another process may finish this action: its owner is provably gone.

    `owner` None is an action written before owners were recorded: nobody can vouch for it.
    """
    if owner is None or expires is None or expires <= now:
        return True
    return owner.provably_gone()
