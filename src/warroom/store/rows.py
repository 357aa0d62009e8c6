"""What both SQL backends share: rows into values, and the shape of an engine's commit.

SQLite and PostgreSQL differ in SQL (placeholders, locking, the rollout key); what a row
means and what a commit does in its one transaction is the same, so it is written once.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

from warroom.core.secrets import redact
from warroom.core.snapshot import JournalEntry
from warroom.store.base import (
    ActionWrite,
    Change,
    Command,
    Committed,
    Fence,
    Holder,
    LeaseInfo,
    PendingAction,
    Row,
    StaleState,
    StandbyInfo,
    Store,
    StoredUpdate,
)

# The columns each query reads, in the order the converters below take them.
ENTRY = "seq, ts, kind, message, actor, action_id, data"
ACTION = "id, kind, intent, progress, created, epoch"
UPDATE = "id, created, due, reason, status, text, facts, by_whom, published, archive"
COMMAND = "id, created, verb, args, actor, status, message, action_id, finished, engine, epoch"


def instance(holder_id: str) -> str:
    """The engine instance a Holder.id ends with (`… #a1b2c3d4`)."""
    return holder_id.rpartition(" #")[2] if " #" in holder_id else ""


def entry(row: tuple) -> JournalEntry:
    return JournalEntry(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]))


def action(row: tuple) -> PendingAction:
    return PendingAction(row[0], row[1], json.loads(row[2]), json.loads(row[3]), row[4], row[5])


def command(row: tuple) -> Command:
    return Command(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]), row[5], row[6], row[7], row[8], row[9], row[10])


def update(row: tuple) -> StoredUpdate:
    return StoredUpdate(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7], row[8], row[9])


def update_values(u: StoredUpdate) -> tuple[Any, ...]:
    """An update's columns after its id, in UPDATE's order; its text and facts redacted like the journal's."""
    return (u.created, u.due, u.reason, u.status, redact(u.text), redact(json.dumps(u.facts, sort_keys=True, default=str)), u.by,
            u.published, u.archive)


def one(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """The row a statement always returns (INSERT … RETURNING, an aggregate, a row the transaction holds)."""
    assert row is not None
    return row


def held_lease(row: tuple[Any, ...] | None) -> LeaseInfo:
    """The lease row a transaction has just written or holds."""
    info = lease(row)
    assert info is not None
    return info


def lease(row: tuple | None) -> LeaseInfo | None:
    """From (epoch, holder, user, host, pid, started, acquired, heartbeat, expires, speed, log)."""
    if row is None:
        return None
    holder = Holder(row[2], row[3], row[4], row[5], instance(row[1])) if row[1] is not None else None
    return LeaseInfo(row[0], holder, row[6] or 0.0, row[7] or 0.0, row[8] or 0.0, row[9], row[10])


def standby(row: tuple) -> StandbyInfo:
    """From (user, host, pid, started, since, heartbeat, holder)."""
    return StandbyInfo(Holder(row[0], row[1], row[2], row[3], instance(row[6])), row[4], row[5])


def journal_text(row: Row) -> tuple[str, str, str, str]:
    """(kind, message, actor, data as JSON) as stored: message and data redacted."""
    kind, message, actor, data = row
    return str(kind), redact(message), actor, redact(json.dumps(data, default=str, sort_keys=True))


def state_text(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True)


class SQLCommits(Store):
    """An engine's commit and its catch-up, over a backend's primitives inside one transaction."""

    _P: str  # the driver's placeholder: ? or %s

    @abstractmethod
    def _read(self, query: str, args: tuple | list = ()) -> list[tuple]: ...

    @abstractmethod
    def _journal(self, after: int) -> tuple[str, list[Any]]:
        """The query of this rollout's entries after `after` (more conditions may follow), and its arguments."""

    def entries(self, after: int = 0, limit: int | None = None, action_id: str | None = None) -> list[JournalEntry]:
        query, args = self._journal(after)
        if action_id is not None:
            query += f" AND action_id = {self._P}"
            args.append(action_id)
        query += " ORDER BY seq"
        if limit is not None:
            query += f" LIMIT {self._P}"
            args.append(limit)
        return [entry(r) for r in self._read(query, args)]

    @abstractmethod
    def _tx(self) -> Any:
        """A context manager: one transaction, yielding what the primitives below take."""

    @abstractmethod
    def _fence(self, db: Any, fence: Fence) -> None:
        """Fenced unless `fence` is the lease's, holding the lease row until the transaction ends."""

    @abstractmethod
    def _state_row(self, db: Any) -> tuple[int, str] | None: ...

    @abstractmethod
    def _put_state(self, db: Any, version: int, text: str) -> None: ...

    @abstractmethod
    def _write_action(self, db: Any, ts: float, fence: Fence, action: ActionWrite) -> None: ...

    @abstractmethod
    def _insert(self, db: Any, ts: float, row: Row, action_id: str | None) -> JournalEntry: ...

    @abstractmethod
    def _command_outcome(self, db: Any, command_id: int, status: str, message: str, finished: float | None) -> None: ...

    @abstractmethod
    def _commands_left(self, db: Any, epoch: int) -> list[tuple]:
        """Commands claimed under another epoch and never finished (their engine was killed or fenced)."""

    def finish_command(self, fence: Fence, command_id: int, status: str, message: str, finished: float) -> None:
        with self._tx() as db:
            self._fence(db, fence)
            self._command_outcome(db, command_id, status, redact(message), finished)

    def take_over_commands(self, fence: Fence, rerun: tuple[str, ...], message: str, finished: float) -> list[Command]:
        with self._tx() as db:
            self._fence(db, fence)
            left = [command(r) for r in self._commands_left(db, fence.epoch)]
            for found in left:
                # Refused, not failed: nothing went wrong in it that asking again would meet (`warroom step` exits 6).
                self._command_outcome(db, found.id, *(("queued", "", None) if found.verb in rerun else ("refused", message, finished)))
            return left

    def commit(self, fence: Fence, ts: float, entries: Sequence[Row] = (), *, change: Change | None = None,
               state: dict[str, Any] | None = None, action: ActionWrite | None = None,
               expected_version: int | None = None) -> Committed:
        with self._tx() as db:
            self._fence(db, fence)
            row = self._state_row(db)
            version = row[0] if row else 0
            if expected_version is not None and version != expected_version:
                raise StaleState()
            current = json.loads(row[1]) if row else {}
            rows = list(entries)
            if change is not None:
                state, more = change(current)
                rows += more
            if action is not None:
                self._write_action(db, ts, fence, action)
            written = [self._insert(db, ts, r, action.id if action else None) for r in rows]
            if state is None:
                return Committed(written, None, current)
            self._put_state(db, version + 1, state_text(state))
            return Committed(written, version + 1, state)

    def commit_many(self, fence: Fence, held: list[tuple[float, Row | None, ActionWrite | None]], state: dict[str, Any]) -> Committed:
        with self._tx() as db:
            self._fence(db, fence)
            written = []
            for ts, row, action in held:
                if action is not None:
                    self._write_action(db, ts, fence, action)
                if row is not None:
                    written.append(self._insert(db, ts, row, action.id if action else None))
            current = self._state_row(db)
            version = (current[0] if current else 0) + 1
            self._put_state(db, version, state_text(state))
            return Committed(written, version, state)

    @staticmethod
    def _pages(read: Any, after: int, page: int) -> Iterator[JournalEntry]:
        """Every entry `read(after)` pages through (a page per call, so no lock is held long)."""
        while True:
            rows = read(after)
            for r in rows:
                yield entry(r)
            if len(rows) < page:
                return
            after = rows[-1][0]
