# Over 500 lines: the whole contract of the store in one place — its promises, errors, rows and the abstract Store each dialect implements.
"""The store: the bus between a rollout's engine and its clients, and everything it keeps.

One store holds one rollout: its journal, state, write-ahead actions, samples, the plan
as it ran, the engine lease, the commands clients send, and the latest snapshot the
engine published. The engine is the only writer of decisions; consoles and verbs only
read and send commands.

This module is the whole contract. store/core.py keeps it once, in SQL; store/sqlite.py and
store/postgres.py are its dialects (connections, schema, errors, how a change is noticed).
The engine reaches its store through one thread of its own (store/thread.py), so no store
call ever holds up its event loop. The promises:

- **One transaction per commit.** Journal entries, a state change and an action row
  commit together or not at all; a state change is computed from the state as it is
  inside the transaction (`commit(change=…)`), never from an older copy.
- **Fencing.** An engine commits only with the `Fence` of the lease it holds. The store
  checks it inside the same transaction as the write: a lease taken over since (a higher
  epoch) makes the commit raise `Fenced`, and nothing of it is written.
- **One clock: the store's.** Every time that is compared between processes or hosts (a
  lease's heartbeat and expiry, a standby's heartbeat, when a command was sent, when a
  snapshot was published) is stamped by the store, on its clock (`now()`): the database's
  for PostgreSQL; for SQLite the host's, which every process on it shares whatever its wall
  clock says (store/sqlite.py). No client's wall clock decides whether an engine is alive
  or how old a command is.
- **Leases.** One lease row per rollout. Taking it from a new holder (it was free,
  released, expired, or its holder is proven dead) raises the epoch by one; renewing keeps
  it.
- **Commands.** Any client may send one, within the bounds below (CommandTooLarge says
  which); exactly one engine claims it (`queued` → `running`, in a transaction; a rollback
  before anything queued earlier) and writes its outcome. Finished commands are pruned to
  the newest KEEP_COMMANDS.
- **Changes.** `watch()` gives a waiter that returns when anything was committed since
  its last look; `watch(commands=True)` (the engine's) also wakes at once when a client
  sends a command.
"""

from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from warroom.core.snapshot import JournalEntry

# Schema versions this code reads and writes; a store written by a newer warroom is refused.
SCHEMA_VERSION = 3

# What a command may carry (a reason, a checklist item's id: text a human typed), and how many
# finished ones are kept. A flood of commands must not grow the store, the engine or the journal.
MAX_COMMAND_TEXT = 1000  # characters in any one text of a command's arguments (a reason)
MAX_COMMAND_BYTES = 4096  # its arguments as JSON, and who sent it as JSON, each
KEEP_COMMANDS = 1000  # finished commands kept per rollout (their outcomes are in the journal too)


class StoreError(Exception):
    """The store cannot be opened or read; the message names it and says what to do."""


class StoreMissing(StoreError):
    """No rollout was ever recorded here (clients never create a store: only an engine does)."""


class DamagedState(StoreError):
    """The store's pages are damaged; the message names it and says how to salvage its journal."""


class StoreUnwritable(StoreError):
    """A write failed for want of room or rights (a full disk), or a network store cannot be
    reached (then reads fail alike): nothing of it was written.

    An engine keeps guarding from memory and retries; see engine/journal.py.
    """


class CommandTooLarge(StoreError):
    """A command carries more than a command may (MAX_COMMAND_TEXT, MAX_COMMAND_BYTES); nothing was queued."""


class StaleState(Exception):
    """The state changed since it was read (a commit with `expected_version`)."""


class Fenced(Exception):
    """This engine's lease was taken over (its epoch is not the lease's): it must stop acting at once."""

    def __init__(self, mine: int, now: LeaseInfo | None):
        held = f"epoch {now.epoch}, held by {now.holder.id}" if now is not None and now.holder else "released"
        super().__init__(f"fenced: this engine held epoch {mine}; the lease is now {held}")
        self.mine = mine
        self.now = now


# ---------------------------------------------------------------- who


@dataclass(frozen=True)
class Holder:
    """An engine process: who it runs as, where, and which process exactly (pids are reused)."""

    user: str
    host: str
    pid: int
    started: int | None = None  # process start, in clock ticks since boot (Linux /proc); None if unknown
    instance: str = ""  # which engine of that process (tests and a drill may run several in one)

    @property
    def id(self) -> str:
        return f"{self.user}@{self.host} pid {self.pid}" + (f" start {self.started}" if self.started is not None else "") + (
            f" #{self.instance}" if self.instance else "")

    def label(self) -> str:
        return f"{self.user}@{self.host} pid {self.pid}"

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user, "host": self.host, "pid": self.pid, "started": self.started, "instance": self.instance}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Holder:
        return cls(str(data["user"]), str(data["host"]), int(data["pid"]), data.get("started"), str(data.get("instance", "")))

    def provably_gone(self) -> bool:
        """True only when this host can prove the process no longer runs (another host: never)."""
        if self.host != hostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # it exists, under another user
        if process_state(self.pid) == "Z":
            return True  # killed, and not reaped yet (a detached engine's parent may never reap it)
        now_started = process_started(self.pid)
        return self.started is not None and now_started is not None and now_started != self.started


def hostname() -> str:
    """This host's name as leases record it; WARROOM_HOSTNAME stands in for another host in tests."""
    return os.environ.get("WARROOM_HOSTNAME") or socket.gethostname()


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat from field 3 on (Linux); [] if unknown. The command name (field 2) may hold
    spaces, so the fields are counted from its closing parenthesis."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def process_started(pid: int) -> int | None:
    """When a process started, in clock ticks since boot (field 22); None if unknown."""
    fields = _stat(pid)
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def process_state(pid: int) -> str:
    """R, S, D, Z (a zombie: it ended), T (stopped) …; "" if unknown."""
    fields = _stat(pid)
    return fields[0] if fields else ""


# ---------------------------------------------------------------- leases


@dataclass(frozen=True)
class Fence:
    """What every engine commit carries: the epoch of the lease it holds."""

    epoch: int
    holder: str  # Holder.id


@dataclass(frozen=True)
class LeaseInfo:
    """The rollout's engine lease as the store has it."""

    epoch: int  # raised by one at every change of holder; never goes down
    holder: Holder | None  # None: released (or never taken)
    acquired: float = 0.0  # when this holder took it (the store's clock, as every time below)
    heartbeat: float = 0.0  # its last renewal
    expires: float = 0.0  # when another engine may take it over
    speed: str = "1"  # the holder's clock speed (1, N, max)
    log: str = ""  # where the holder logs

    def fence(self) -> Fence:
        assert self.holder is not None
        return Fence(self.epoch, self.holder.id)


@dataclass(frozen=True)
class StandbyInfo:
    holder: Holder
    since: float
    heartbeat: float


# ---------------------------------------------------------------- commands


@dataclass(frozen=True)
class Command:
    id: int
    created: float  # when the client sent it, on the store's clock
    verb: str  # step | pause | resume | rollback | retry | tick | ack | shutdown
    args: dict[str, Any]
    actor: dict[str, Any]  # identity.Actor as JSON: the human who asked
    status: str = "queued"  # queued → running → done | refused | failed; or expired
    message: str = ""  # the outcome in words
    action_id: str | None = None  # the write-ahead action it started, if any
    finished: float | None = None
    engine: str = ""  # Holder.id of the engine that ran it
    epoch: int | None = None
    waited: float = 0.0  # seconds it was queued before this claim, on the store's clock (set by claim_command)
    sender: str = ""  # the database role that queued it, as the database recorded it ("": a store that cannot prove one)

    @property
    def done(self) -> bool:
        return self.status in ("done", "refused", "failed", "expired")


# ---------------------------------------------------------------- what commits carry


@dataclass(frozen=True)
class ActionWrite:
    """What a commit does to a write-ahead action row."""

    id: str
    new: tuple[str, dict[str, Any]] | None = None  # (kind, intent): the intent of a new action
    status: str | None = None  # done | failed | abandoned: its outcome
    progress: dict[str, Any] | None = None  # how far it got (a resumed rollback skips what is done)
    command: int | None = None  # the command whose action this is (recorded on the command)


@dataclass(frozen=True)
class PendingAction:
    id: str
    kind: str  # step_up | rollback
    intent: dict[str, Any]
    progress: dict[str, Any]
    created: float
    epoch: int | None  # the engine lease epoch it was started (or last adopted) under


@dataclass(frozen=True)
class StoredSnapshot:
    seq: int  # raised by one at every publication
    published: float  # when it was published, on the store's clock
    body: dict[str, Any]  # Snapshot.to_json() without the journal


@dataclass(frozen=True)
class StoredUpdate:
    """A stakeholder update as the store keeps it (core.updates: its statuses and reasons)."""

    id: int  # 0: not stored yet
    created: float  # when it was drafted (engine clock)
    due: float  # when it had to be out
    reason: str  # UpdateReason
    status: str  # UpdateStatus: draft → approved → published
    text: str
    facts: dict[str, Any]  # the numbers it was drafted from
    by: str = ""  # who approved it
    published: float | None = None
    archive: str = ""  # the self-contained HTML file it was archived as


@dataclass
class Committed:
    entries: list[JournalEntry] = field(default_factory=list)
    version: int | None = None  # the state's new version, when it changed
    state: dict[str, Any] = field(default_factory=dict)  # the state as it now is


# One journal entry to write: (kind, message, actor label, data).
Row = tuple[str, str, str, dict[str, Any]]
# Held while the store could not be written: (time, entry or None, action write or None).
Held = tuple[float, Row | None, ActionWrite | None]
# A state change computed inside the transaction from the current state body: the new body
# (None: unchanged) and the entries. Raising refuses the whole commit.
Change = Callable[[dict[str, Any]], tuple[dict[str, Any] | None, list[Row]]]


# The scope of a stop-the-line: every rollout on the store (on PostgreSQL, every rollout in the database).
EVERY_ROLLOUT = "*"


@dataclass(frozen=True)
class StoredFreeze:
    """One freeze row: written by `warroom freeze`, lifted by `warroom thaw`, honoured by every engine that reads it."""

    id: int
    every_rollout: bool  # a stop-the-line
    reason: str
    until: float | None  # None: until lifted
    by: str  # who froze (the sender's proven label)
    created: float
    lifted: float | None = None
    lifted_by: str = ""


class Waiter(ABC):
    """Returns when anything was committed to the store since the last look."""

    @abstractmethod
    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True when something changed (a client's worker thread)."""

    @abstractmethod
    async def changed(self, timeout: float) -> bool:
        """The same, on an asyncio loop (the engine's)."""

    def close(self) -> None:
        return None


class Store(ABC):
    """One rollout's store. See the module docstring for what every backend promises."""

    # Whether every engine of this rollout writes through the same storage, so one that
    # cannot write (a full disk) leaves no other able to take over (SQLite: yes).
    shared_fate: ClassVar[bool] = False
    # Whether the store records who queued a command as the server proves it (PostgreSQL: the session's
    # role); where it does not (SQLite), a sign-off goes to the engine over its local socket instead.
    proves_sender: ClassVar[bool] = False
    ref: str  # what the store was opened from, for messages (a path, a URL without password)
    readonly: bool = False  # opened read-only (a state on a read-only file system): reads only

    # ------------------------------------------------------------ the store's clock

    @abstractmethod
    def now(self) -> float:
        """The store's clock (seconds since the epoch): what every liveness and age is judged by."""

    # ------------------------------------------------------------ journal (read)

    @abstractmethod
    def entries(self, after: int = 0, limit: int | None = None, action_id: str | None = None) -> list[JournalEntry]:
        """Entries after `after`, oldest first."""

    @abstractmethod
    def tail(self, n: int) -> list[JournalEntry]:
        """The newest n entries, newest first."""

    @abstractmethod
    def iter_entries(self, after: int = 0, kinds: Collection[str] = (), page: int = 2000) -> Iterator[JournalEntry]:
        """Every entry after `after` (of `kinds`, if given), oldest first, read a page at a time: a
        journal of millions of entries streams in bounded memory."""

    @abstractmethod
    def journal_count(self) -> int: ...

    @abstractmethod
    def last_seq(self) -> int: ...

    # ------------------------------------------------------------ state (read)

    @abstractmethod
    def load_state(self) -> tuple[int, dict[str, Any]]:
        """(version, body); (0, {}) before the first state."""

    @abstractmethod
    def state_version(self) -> int: ...

    # ------------------------------------------------------------ engine writes (fenced)

    @abstractmethod
    def commit(self, fence: Fence, ts: float, entries: Sequence[Row] = (), *, change: Change | None = None,
               state: dict[str, Any] | None = None, action: ActionWrite | None = None,
               expected_version: int | None = None) -> Committed:
        """One transaction: entries, a state change (`change`, computed inside; or `state`, as
        given) and an action row. Fenced when `fence` is not the lease's; StaleState when
        `expected_version` is given and the state moved."""

    @abstractmethod
    def commit_many(self, fence: Fence, held: Sequence[Held], state: dict[str, Any], *, after: int) -> Committed:
        """Entries and action writes held while the store could not be written, in order, each
        with its own time; then the state as the engine holds it now. Written exactly once: a
        commit the engine never heard the answer to may have landed (the connection cut after
        the server committed), so an entry already in the journal after seq `after` (the newest
        the engine knew written) is not written again, and a new action already there is kept."""

    @abstractmethod
    def record_samples(self, fence: Fence, ts: float, values: Mapping[str, float | None]) -> None: ...

    @abstractmethod
    def save_plan(self, fence: Fence, ts: float, body: dict[str, Any]) -> None:
        """Keep this version of the plan (only what a report reads), unless it is the one kept last."""

    @abstractmethod
    def publish(self, fence: Fence, body: dict[str, Any]) -> int:
        """Rewrite the snapshot row, stamped with the store's clock; returns its sequence number."""

    @abstractmethod
    def adopt_actions(self, fence: Fence) -> list[PendingAction]:
        """Every pending action not started under this epoch, now owned by it (a takeover finishes them)."""

    # ------------------------------------------------------------ reads

    @abstractmethod
    def pending_actions(self) -> list[PendingAction]: ...

    @abstractmethod
    def action_status(self, action_id: str) -> str | None: ...

    @abstractmethod
    def samples(self, series: str, start: float = 0, end: float = float("inf")) -> Iterator[tuple[float, float | None]]: ...

    @abstractmethod
    def latest_plan(self) -> dict[str, Any] | None: ...

    @abstractmethod
    def snapshot(self) -> StoredSnapshot | None: ...

    @abstractmethod
    def snapshot_seq(self) -> int:
        """The stored snapshot's sequence number (0: none yet), without reading its body."""

    # ------------------------------------------------------------ stakeholder updates

    @abstractmethod
    def put_update(self, fence: Fence, update: StoredUpdate) -> int:
        """Store a new update (`id` 0) or rewrite one (a fresher draft, its approval, its publication); its id."""

    @abstractmethod
    def updates(self, limit: int = 20) -> list[StoredUpdate]:
        """The newest updates, newest first."""

    # ------------------------------------------------------------ the engine lease

    @abstractmethod
    def lease(self) -> LeaseInfo | None:
        """The lease row, or None when no engine ever ran here."""

    @abstractmethod
    def acquire_lease(self, holder: Holder, ttl: float, *, replacing: str | None = None,
                      speed: str = "1", log: str = "") -> LeaseInfo:
        """Take the lease when it is free, released, expired, already ours, or held by `replacing`
        (a holder the caller proved dead). A new holder raises the epoch by one. Returns the lease
        as it now is: ours when `.holder.id == holder.id`."""

    @abstractmethod
    def renew_lease(self, fence: Fence, ttl: float) -> LeaseInfo:
        """Extend our lease (the heartbeat); Fenced when it is no longer ours."""

    @abstractmethod
    def release_lease(self, fence: Fence) -> None:
        """Give the lease up (the epoch stays); a no-op when it is no longer ours."""

    @abstractmethod
    def standby(self, holder: Holder) -> None:
        """Register (or refresh) an engine waiting to take over."""

    @abstractmethod
    def drop_standby(self, holder: Holder) -> None: ...

    @abstractmethod
    def standbys(self) -> list[StandbyInfo]: ...

    # ------------------------------------------------------------ commands

    @abstractmethod
    def send_command(self, verb: str, args: dict[str, Any], actor: dict[str, Any]) -> int:
        """Queue a command for the engine (and wake it); any client may. CommandTooLarge when it
        carries more than a command may."""

    @abstractmethod
    def claim_command(self, fence: Fence) -> Command | None:
        """The queued command to run next, now `running` under this engine: the oldest rollback, else
        the oldest command; None when there is none."""

    @abstractmethod
    def finish_command(self, fence: Fence, command_id: int, status: str, message: str) -> None:
        """Its outcome; the oldest finished commands beyond KEEP_COMMANDS go."""

    @abstractmethod
    def take_over_commands(self, fence: Fence, rerun: tuple[str, ...], message: str) -> list[Command]:
        """Commands an earlier engine claimed and never finished (it was killed or fenced): those
        whose verb is in `rerun` are queued again, the others are refused with `message`. Returns them."""

    @abstractmethod
    def command(self, command_id: int) -> Command | None:
        """The command, or None when there is none (never sent, or pruned long after it finished)."""

    # ------------------------------------------------------------ changes

    # ------------------------------------------------------------ freezes (clients write them, engines honour them)

    @abstractmethod
    def add_freeze(self, reason: str, until: float | None, by: str, created: float, *, every_rollout: bool = False) -> int:
        """Freeze this rollout (or, `every_rollout`, every rollout on the store) until `until` or a thaw; its id."""

    @abstractmethod
    def lift_freezes(self, by: str, lifted: float, *, every_rollout: bool = False) -> list[StoredFreeze]:
        """Lift this rollout's open freezes (or the open stop-the-lines); the rows lifted."""

    @abstractmethod
    def freezes(self, since: float) -> list[StoredFreeze]:
        """The freezes this rollout honours that are open, or were lifted or ran out after `since` (oldest first)."""

    @abstractmethod
    def watch(self, *, commands: bool = False) -> Waiter:
        """A waiter for changes; `commands` (the driving engine's) also wakes the moment a command is sent."""

    @abstractmethod
    def describe(self) -> str:
        """What the store is, for `warroom check`: the database and its schema version."""

    @abstractmethod
    def close(self) -> None: ...
