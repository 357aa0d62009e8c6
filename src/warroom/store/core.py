# Over 500 lines: every decision the store makes, written once for both dialects (fencing, commits, held writes landed once, leases, commands) — split, the commit would sit apart from the fence it checks.
"""The store written once: fencing, the shape of a commit, the lease rules, commands and their bounds.

Everything a store *decides* is here, in SQL both dialects speak (`?` placeholders,
`INSERT … ON CONFLICT`, `RETURNING`). A dialect (store/sqlite.py, store/postgres.py) gives
it transactions, its clock, its schema, its errors and how a change is noticed, and says
where one rollout's rows are (a `Layout`): SQLite keeps one rollout a file, so its tables
of many rows need no key and its one-row tables are keyed `id = 1`; PostgreSQL keeps many
rollouts in one schema, every table keyed by the rollout.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, Protocol

from warroom.core.secrets import redact
from warroom.core.snapshot import JournalEntry
from warroom.store import rows
from warroom.store.base import (
    EVERY_ROLLOUT,
    KEEP_COMMANDS,
    MAX_COMMAND_BYTES,
    MAX_COMMAND_TEXT,
    ActionWrite,
    Change,
    Command,
    CommandTooLarge,
    Committed,
    Fence,
    Fenced,
    Held,
    Holder,
    LeaseInfo,
    PendingAction,
    Row,
    StaleState,
    StandbyInfo,
    Store,
    StoredFreeze,
    StoredSnapshot,
    StoredUpdate,
)
from warroom.store.rows import SQLRow

PENDING = "status = 'pending'"
QUEUED = "status = 'queued'"
RUNNING = "status = 'running'"
FINISHED = "status NOT IN ('queued', 'running')"
OTHER_EPOCH = "(epoch IS NULL OR epoch != ?)"
NO_END = 1e18  # a sample time no rollout reaches (an open end: `ts <= ∞` in both dialects' terms)


class Tx(Protocol):
    """One transaction of a dialect, in `?` placeholders."""

    def one(self, sql: str, args: Sequence[Any] = ()) -> SQLRow | None: ...

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[SQLRow]: ...

    def run(self, sql: str, args: Sequence[Any] = ()) -> None: ...

    def many(self, sql: str, args: Sequence[Sequence[Any]]) -> None: ...

    def notify(self) -> None:
        """Tell other connections' waiters at commit (a quiet transaction decided it changed something)."""


@dataclass(frozen=True)
class Layout:
    """Where a dialect keeps one rollout's rows."""

    schema: str  # prefix of the tables' names: "" or "warroom."
    rollout: str | None  # the rollout's key where tables hold many rollouts (their `rollout` column); None: one a database
    user: str  # the column of an engine's user ("user" is a reserved word in PostgreSQL)
    lock: str  # appended to a SELECT of the rows a transaction changes next (" FOR UPDATE" where rows lock one by one)


def command_texts(verb: str, args: Mapping[str, Any], actor: Mapping[str, Any]) -> tuple[str, str]:
    """A command's arguments and sender as stored (JSON); CommandTooLarge when it carries more than a command may."""
    for name, value in args.items():
        if isinstance(value, str) and len(value) > MAX_COMMAND_TEXT:
            raise CommandTooLarge(f"{verb}: the {name} is {len(value):,} characters; a command carries at most "
                                  f"{MAX_COMMAND_TEXT:,} in one text: shorten it (nothing was sent)")
    # Who sent it is told by the client's identity, not typed: a field too long is cut, never a reason to refuse.
    who = {k: v[:MAX_COMMAND_TEXT] if isinstance(v, str) else v for k, v in actor.items()}
    texts = json.dumps(dict(args), sort_keys=True), json.dumps(who, sort_keys=True)
    for what, text in zip(("its arguments", "who sent it"), texts, strict=True):
        if len(text.encode()) > MAX_COMMAND_BYTES:
            raise CommandTooLarge(f"{verb}: {what} take {len(text.encode()):,} bytes; a command carries at most "
                                  f"{MAX_COMMAND_BYTES:,} bytes of each (nothing was sent)")
    return texts


class SQLStore(Store):
    """The contract of store/base.py over a dialect's transactions and clock."""

    def __init__(self, layout: Layout):
        self.s = layout.schema
        self.user = layout.user
        self.lock = layout.lock
        keyed = layout.rollout is not None
        # This rollout's rows of a table of many rows: the key's condition and column, and its value.
        self.key: tuple[Any, ...] = (layout.rollout,) if keyed else ()
        self._key_conds = ("rollout = ?",) if keyed else ()
        self.key_col = "rollout, " if keyed else ""
        self.key_mark = "?, " if keyed else ""
        # The row of a one-row table (state, lease, snapshot).
        self.row_col = "rollout" if keyed else "id"
        self.row: tuple[Any, ...] = (layout.rollout,) if keyed else (1,)
        self.lease_cols = f"epoch, holder, {self.user}, host, pid, started, acquired, heartbeat, expires, speed, log"

    # ------------------------------------------------------------ what a dialect gives

    @abstractmethod
    def _tx(self, *, quiet: bool = False, expendable: bool = False) -> AbstractContextManager[Tx]:
        """One write transaction. It notifies waiters at commit unless `quiet` (then `Tx.notify` does).

        `expendable`: its commit need not wait until it is on disk. What it writes the engine writes again
        soon (a snapshot, samples), and a crash losing it loses nothing a decision rests on; a decision
        committed after it makes it durable too (a log is written in order)."""

    @abstractmethod
    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[SQLRow]:
        """One read, outside any transaction."""

    @abstractmethod
    def _clock(self, tx: Tx) -> float:
        """The store's clock, inside a write transaction."""

    def _sent(self) -> None:
        """A command was just queued (the SQLite dialect wakes its engine)."""

    def _let_go(self) -> None:
        """The lease was just released (the SQLite dialect stops listening for wake-ups)."""

    def _sender(self, tx: Tx, command_id: int) -> str:
        """Who queued a command as the database proves it ("": a dialect that cannot; PostgreSQL records the session's role)."""
        return ""

    # ------------------------------------------------------------ SQL helpers

    def _where(self, *conds: str) -> str:
        """WHERE of this rollout's rows of a table of many rows; its arguments start with `self.key`."""
        parts = (*self._key_conds, *conds)
        return f" WHERE {' AND '.join(parts)}" if parts else ""

    def _one(self, table: str, cols: str) -> SQLRow | None:
        found = self._read(f"SELECT {cols} FROM {self.s}{table} WHERE {self.row_col} = ?", self.row)
        return found[0] if found else None

    # ------------------------------------------------------------ journal

    def entries(self, after: int = 0, limit: int | None = None, action_id: str | None = None) -> list[JournalEntry]:
        conds, args = ["seq > ?"], [*self.key, after]
        if action_id is not None:
            conds.append("action_id = ?")
            args.append(action_id)
        sql = f"SELECT {rows.ENTRY} FROM {self.s}journal{self._where(*conds)} ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [rows.entry(r) for r in self._read(sql, args)]

    def tail(self, n: int) -> list[JournalEntry]:
        return [rows.entry(r) for r in self._read(
            f"SELECT {rows.ENTRY} FROM {self.s}journal{self._where()} ORDER BY seq DESC LIMIT ?", (*self.key, n))]

    def iter_entries(self, after: int = 0, kinds: Collection[str] = (), page: int = 2000) -> Iterator[JournalEntry]:
        conds = ["seq > ?"] + ([f"kind IN ({', '.join('?' * len(kinds))})"] if kinds else [])
        sql = f"SELECT {rows.ENTRY} FROM {self.s}journal{self._where(*conds)} ORDER BY seq LIMIT ?"
        while True:  # a page per read, so no lock is held long
            found = self._read(sql, (*self.key, after, *kinds, page))
            yield from (rows.entry(r) for r in found)
            if len(found) < page:
                return
            after = found[-1][0]

    def journal_count(self) -> int:
        return int(self._read(f"SELECT COUNT(*) FROM {self.s}journal{self._where()}", self.key)[0][0])

    def last_seq(self) -> int:
        return int(self._read(f"SELECT COALESCE(MAX(seq), 0) FROM {self.s}journal{self._where()}", self.key)[0][0])

    # ------------------------------------------------------------ state

    def load_state(self) -> tuple[int, dict[str, Any]]:
        found = self._one("state", "version, body")
        return (0, {}) if found is None else (found[0], json.loads(found[1]))

    def state_version(self) -> int:
        found = self._one("state", "version")
        return 0 if found is None else int(found[0])

    # ------------------------------------------------------------ engine writes: fenced, one transaction each

    def _fence(self, tx: Tx, fence: Fence) -> None:
        """Fenced unless `fence` is the lease's; the lease row is held until the transaction ends."""
        found = tx.one(f"SELECT epoch, holder FROM {self.s}lease WHERE {self.row_col} = ?{self.lock}", self.row)
        if found is None or found[0] != fence.epoch or found[1] != fence.holder:
            raise Fenced(fence.epoch, self._lease(tx))

    def _insert(self, tx: Tx, ts: float, row: Row, action_id: str | None) -> JournalEntry:
        kind, message, actor, payload = rows.journal_text(row)
        written = tx.one(f"INSERT INTO {self.s}journal ({self.key_col}ts, kind, message, actor, action_id, data) "
                         f"VALUES ({self.key_mark}?, ?, ?, ?, ?, ?) RETURNING seq", (*self.key, ts, kind, message, actor, action_id, payload))
        assert written is not None
        return JournalEntry(written[0], ts, kind, message, actor, action_id, json.loads(payload))

    def _put_state(self, tx: Tx, version: int, body: dict[str, Any]) -> None:
        tx.run(f"INSERT INTO {self.s}state ({self.row_col}, version, body) VALUES (?, ?, ?) "
               f"ON CONFLICT ({self.row_col}) DO UPDATE SET version = excluded.version, body = excluded.body",
               (*self.row, version, rows.state_text(body)))

    def _state_row(self, tx: Tx) -> SQLRow | None:
        return tx.one(f"SELECT version, body FROM {self.s}state WHERE {self.row_col} = ?", self.row)

    def _write_action(self, tx: Tx, ts: float, fence: Fence, action: ActionWrite, *, again: bool = False) -> None:
        """`again`: the write may have landed already (held after an ambiguous commit); a new action there is kept as it is."""
        actions, by_id = f"{self.s}actions", self._where("id = ?")
        if action.new is not None:
            tx.run(f"INSERT INTO {actions} ({self.key_col}id, kind, status, intent, created, epoch) "
                   f"VALUES ({self.key_mark}?, ?, 'pending', ?, ?, ?)" + (f" ON CONFLICT ({self.key_col}id) DO NOTHING" if again else ""),
                   (*self.key, action.id, action.new[0], json.dumps(action.new[1], sort_keys=True), ts, fence.epoch))
            if action.command is not None:
                tx.run(f"UPDATE {self.s}commands SET action_id = ?{by_id}", (action.id, *self.key, action.command))
        if action.progress is not None:
            tx.run(f"UPDATE {actions} SET progress = ?{by_id}", (json.dumps(action.progress), *self.key, action.id))
        if action.status is not None:
            tx.run(f"UPDATE {actions} SET status = ?, finished = ?{by_id}", (action.status, ts, *self.key, action.id))

    def commit(self, fence: Fence, ts: float, entries: Sequence[Row] = (), *, change: Change | None = None,
               state: dict[str, Any] | None = None, action: ActionWrite | None = None,
               expected_version: int | None = None) -> Committed:
        with self._tx() as tx:
            self._fence(tx, fence)
            found = self._state_row(tx)
            version = found[0] if found else 0
            if expected_version is not None and version != expected_version:
                raise StaleState()
            current = json.loads(found[1]) if found else {}
            written_rows = list(entries)
            if change is not None:
                state, more = change(current)
                written_rows += more
            if action is not None:
                self._write_action(tx, ts, fence, action)
            written = [self._insert(tx, ts, r, action.id if action else None) for r in written_rows]
            if state is None:
                return Committed(written, None, current)
            self._put_state(tx, version + 1, state)
            return Committed(written, version + 1, state)

    def commit_many(self, fence: Fence, held: Sequence[Held], state: dict[str, Any], *, after: int) -> Committed:
        with self._tx() as tx:
            self._fence(tx, fence)
            landed = self._landed(tx, after)
            written = []
            for ts, row, action in held:
                action_id = action.id if action else None
                if action is not None:
                    self._write_action(tx, ts, fence, action, again=True)  # a status or progress written twice is the same
                if row is not None:
                    same = landed.get((ts, *rows.journal_text(row), action_id))
                    written.append(same.pop(0) if same else self._insert(tx, ts, row, action_id))
            found = self._state_row(tx)
            version = (found[0] if found else 0) + 1
            self._put_state(tx, version, state)
            return Committed(written, version, state)

    def _landed(self, tx: Tx, after: int) -> dict[tuple[Any, ...], list[JournalEntry]]:
        """The entries written after seq `after`, by their content: only this engine writes the journal while it holds
        the lease, so any there are from its commits whose answer it never heard."""
        landed: dict[tuple[Any, ...], list[JournalEntry]] = {}
        for found in tx.all(f"SELECT {rows.ENTRY} FROM {self.s}journal{self._where('seq > ?')} ORDER BY seq", (*self.key, after)):
            _, ts, kind, message, actor, action_id, data = found  # as _insert wrote them: data as stored, not parsed again
            landed.setdefault((ts, kind, message, actor, data, action_id), []).append(rows.entry(found))
        return landed

    def record_samples(self, fence: Fence, ts: float, values: Mapping[str, float | None]) -> None:
        if not values:
            return
        with self._tx(expendable=True) as tx:
            self._fence(tx, fence)
            tx.many(f"INSERT INTO {self.s}samples ({self.key_col}ts, series, value) VALUES ({self.key_mark}?, ?, ?)",
                    [(*self.key, ts, name, value) for name, value in values.items()])

    def save_plan(self, fence: Fence, ts: float, body: dict[str, Any]) -> None:
        text = json.dumps(body, sort_keys=True)
        with self._tx() as tx:
            self._fence(tx, fence)
            last = tx.one(f"SELECT body FROM {self.s}plans{self._where()} ORDER BY seq DESC LIMIT 1", self.key)
            if last is None or last[0] != text:
                tx.run(f"INSERT INTO {self.s}plans ({self.key_col}ts, body) VALUES ({self.key_mark}?, ?)", (*self.key, ts, text))

    def publish(self, fence: Fence, body: dict[str, Any]) -> int:
        text = json.dumps(body, sort_keys=True, default=str)
        # Published every tick and after every decision: on a rollback's path, before its lease renewal.
        with self._tx(expendable=True) as tx:
            self._fence(tx, fence)
            seq = tx.one(f"INSERT INTO {self.s}snapshot AS old ({self.row_col}, seq, published, body) VALUES (?, 1, ?, ?) "
                         f"ON CONFLICT ({self.row_col}) DO UPDATE SET seq = old.seq + 1, published = excluded.published, "
                         "body = excluded.body RETURNING seq", (*self.row, self._clock(tx), text))
            assert seq is not None
            return int(seq[0])

    def put_update(self, fence: Fence, update: StoredUpdate) -> int:
        values = rows.update_values(update)
        with self._tx() as tx:
            self._fence(tx, fence)
            if update.id:
                tx.run(f"UPDATE {self.s}updates SET created = ?, due = ?, reason = ?, status = ?, text = ?, facts = ?, by_whom = ?, "
                       f"published = ?, archive = ?{self._where('id = ?')}", (*values, *self.key, update.id))
                return update.id
            found = tx.one(f"INSERT INTO {self.s}updates ({self.key_col}{rows.UPDATE.partition(', ')[2]}) "
                           f"VALUES ({self.key_mark}?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id", (*self.key, *values))
            assert found is not None
            return int(found[0])

    def adopt_actions(self, fence: Fence) -> list[PendingAction]:
        with self._tx() as tx:
            self._fence(tx, fence)
            found = [rows.action(r) for r in tx.all(
                f"SELECT {rows.ACTION} FROM {self.s}actions{self._where(PENDING, OTHER_EPOCH)} "
                "ORDER BY created", (*self.key, fence.epoch))]
            tx.run(f"UPDATE {self.s}actions SET epoch = ?{self._where(PENDING)}", (fence.epoch, *self.key))
            return found

    # ------------------------------------------------------------ reads

    def pending_actions(self) -> list[PendingAction]:
        return [rows.action(r) for r in self._read(
            f"SELECT {rows.ACTION} FROM {self.s}actions{self._where(PENDING)} ORDER BY created", self.key)]

    def action_status(self, action_id: str) -> str | None:
        found = self._read(f"SELECT status FROM {self.s}actions{self._where('id = ?')}", (*self.key, action_id))
        return str(found[0][0]) if found else None

    def samples(self, series: str, start: float = 0, end: float = float("inf")) -> Iterator[tuple[float, float | None]]:
        found = self._read(f"SELECT ts, value FROM {self.s}samples{self._where('series = ?', 'ts >= ?', 'ts <= ?')} ORDER BY ts",
                           (*self.key, series, start, min(end, NO_END)))
        return iter([(r[0], r[1]) for r in found])

    def latest_plan(self) -> dict[str, Any] | None:
        found = self._read(f"SELECT body FROM {self.s}plans{self._where()} ORDER BY seq DESC LIMIT 1", self.key)
        return json.loads(found[0][0]) if found else None

    def updates(self, limit: int = 20) -> list[StoredUpdate]:
        return [rows.update(r) for r in self._read(
            f"SELECT {rows.UPDATE} FROM {self.s}updates{self._where()} ORDER BY id DESC LIMIT ?", (*self.key, limit))]

    def snapshot(self) -> StoredSnapshot | None:
        found = self._one("snapshot", "seq, published, body")
        return StoredSnapshot(found[0], found[1], json.loads(found[2])) if found else None

    def snapshot_seq(self) -> int:
        found = self._one("snapshot", "seq")
        return int(found[0]) if found else 0

    # ------------------------------------------------------------ the engine lease

    def _lease(self, tx: Tx, *, lock: bool = False) -> LeaseInfo | None:
        return rows.lease(tx.one(f"SELECT {self.lease_cols} FROM {self.s}lease WHERE {self.row_col} = ?"
                                 + (self.lock if lock else ""), self.row))

    def lease(self) -> LeaseInfo | None:
        return rows.lease(self._one("lease", self.lease_cols))

    def acquire_lease(self, holder: Holder, ttl: float, *, replacing: str | None = None,
                      speed: str = "1", log: str = "") -> LeaseInfo:
        with self._tx(quiet=True) as tx:  # a standby tries every second: only a change of holder is news
            # The row exists before anyone locks it, so two first engines serialise on it too.
            tx.run(f"INSERT INTO {self.s}lease ({self.row_col}, epoch) VALUES (?, 0) ON CONFLICT ({self.row_col}) DO NOTHING", self.row)
            current = self._lease(tx, lock=True)
            assert current is not None
            now = self._clock(tx)
            lease = f"UPDATE {self.s}lease SET "
            if current.holder is not None and current.holder.id == holder.id:
                tx.run(lease + f"heartbeat = ?, expires = ? WHERE {self.row_col} = ?", (now, now + ttl, *self.row))
            elif current.holder is None or current.expires < now or current.holder.id == replacing:
                tx.run(lease + f"epoch = ?, holder = ?, {self.user} = ?, host = ?, pid = ?, started = ?, acquired = ?, "
                       f"heartbeat = ?, expires = ?, speed = ?, log = ? WHERE {self.row_col} = ?",
                       (current.epoch + 1, holder.id, holder.user, holder.host, holder.pid, holder.started,
                        now, now, now + ttl, speed, log, *self.row))
                tx.run(f"DELETE FROM {self.s}standbys{self._where('holder = ?')}", (*self.key, holder.id))
                tx.notify()
            got = self._lease(tx)
            assert got is not None
            return got

    def renew_lease(self, fence: Fence, ttl: float) -> LeaseInfo:
        with self._tx() as tx:
            self._fence(tx, fence)
            now = self._clock(tx)
            tx.run(f"UPDATE {self.s}lease SET heartbeat = ?, expires = ? WHERE {self.row_col} = ?", (now, now + ttl, *self.row))
            got = self._lease(tx)
            assert got is not None
            return got

    def release_lease(self, fence: Fence) -> None:
        with self._tx() as tx:
            tx.run(f"UPDATE {self.s}lease SET holder = NULL, expires = 0 WHERE {self.row_col} = ? AND epoch = ? AND holder = ?",
                   (*self.row, fence.epoch, fence.holder))
        self._let_go()

    def standby(self, holder: Holder) -> None:
        with self._tx() as tx:
            now = self._clock(tx)
            tx.run(f"INSERT INTO {self.s}standbys ({self.key_col}holder, {self.user}, host, pid, started, since, heartbeat) "
                   f"VALUES ({self.key_mark}?, ?, ?, ?, ?, ?, ?) ON CONFLICT ({self.key_col}holder) DO UPDATE SET heartbeat = excluded.heartbeat",
                   (*self.key, holder.id, holder.user, holder.host, holder.pid, holder.started, now, now))

    def drop_standby(self, holder: Holder) -> None:
        with self._tx() as tx:
            tx.run(f"DELETE FROM {self.s}standbys{self._where('holder = ?')}", (*self.key, holder.id))

    def standbys(self) -> list[StandbyInfo]:
        return [rows.standby(r) for r in self._read(
            f"SELECT {self.user}, host, pid, started, since, heartbeat, holder FROM {self.s}standbys{self._where()} ORDER BY since",
            self.key)]

    # ------------------------------------------------------------ freezes

    def _scope(self, every_rollout: bool) -> str:
        """A freeze row's scope: this rollout (its key, or "" in a file of one), or every rollout on the store."""
        return EVERY_ROLLOUT if every_rollout else str(self.key[0]) if self.key else ""

    def add_freeze(self, reason: str, until: float | None, by: str, created: float, *, every_rollout: bool = False) -> int:
        # One row: every engine on the store reads it on its next tick (a stop-the-line: every rollout in the database).
        with self._tx() as tx:
            added = tx.one(f"INSERT INTO {self.s}freezes (scope, reason, until, by_whom, created) VALUES (?, ?, ?, ?, ?) RETURNING id",
                           (self._scope(every_rollout), reason, until, by, created))
            assert added is not None
        self._sent()  # the SQLite dialect wakes its engine: the freeze holds from the next tick, not the next poll
        return int(added[0])

    def lift_freezes(self, by: str, lifted: float, *, every_rollout: bool = False) -> list[StoredFreeze]:
        scope = self._scope(every_rollout)
        with self._tx() as tx:
            found = [rows.freeze(r) for r in tx.all(f"SELECT {rows.FREEZE} FROM {self.s}freezes WHERE scope = ? AND lifted IS NULL "
                                                    f"AND (until IS NULL OR until > ?){self.lock}", (scope, lifted))]
            tx.run(f"UPDATE {self.s}freezes SET lifted = ?, lifted_by = ? WHERE scope = ? AND lifted IS NULL", (lifted, by, scope))
        return found

    def freezes(self, since: float) -> list[StoredFreeze]:
        return [rows.freeze(r) for r in self._read(
            f"SELECT {rows.FREEZE} FROM {self.s}freezes WHERE scope IN (?, ?) AND (lifted IS NULL OR lifted >= ?) "
            "AND (until IS NULL OR until > ?) ORDER BY id", (self._scope(False), EVERY_ROLLOUT, since, since))]

    # ------------------------------------------------------------ commands

    def send_command(self, verb: str, args: dict[str, Any], actor: dict[str, Any]) -> int:
        args_text, actor_text = command_texts(verb, args, actor)
        with self._tx() as tx:  # notified: it wakes the driving engine, wherever it runs
            sent = tx.one(f"INSERT INTO {self.s}commands ({self.key_col}created, verb, args, actor) "
                          f"VALUES ({self.key_mark}?, ?, ?, ?) RETURNING id", (*self.key, self._clock(tx), verb, args_text, actor_text))
            assert sent is not None
        self._sent()
        return int(sent[0])

    def _queued(self, tx: Tx, *conds: str) -> SQLRow | None:
        return tx.one(f"SELECT {rows.COMMAND} FROM {self.s}commands{self._where(QUEUED, *conds)} "
                      f"ORDER BY id LIMIT 1{self.lock}", self.key)

    def claim_command(self, fence: Fence) -> Command | None:
        with self._tx(quiet=True) as tx:  # the engine looks at every wake: an empty queue is no news
            self._fence(tx, fence)
            # Going back never waits: a rollback goes before whatever was queued ahead of it (a flood of pauses).
            found = self._queued(tx, "verb = 'rollback'") or self._queued(tx)
            if found is None:
                return None
            tx.notify()
            command = rows.command(found)
            tx.run(f"UPDATE {self.s}commands SET status = 'running', engine = ?, epoch = ?{self._where('id = ?')}",
                   (fence.holder, fence.epoch, *self.key, command.id))
            return replace(command, status="running", engine=fence.holder, epoch=fence.epoch,
                           waited=max(0.0, self._clock(tx) - command.created), sender=self._sender(tx, command.id))

    def _command_outcome(self, tx: Tx, command_id: int, status: str, message: str, finished: float | None) -> None:
        tx.run(f"UPDATE {self.s}commands SET status = ?, message = ?, finished = ?{self._where('id = ?')}",
               (status, message, finished, *self.key, command_id))

    def finish_command(self, fence: Fence, command_id: int, status: str, message: str) -> None:
        with self._tx() as tx:
            self._fence(tx, fence)
            self._command_outcome(tx, command_id, status, redact(message), self._clock(tx))
            # A bounded history: the newest KEEP_COMMANDS finished commands stay (a flood must not grow the store).
            cut = tx.one(f"SELECT id FROM {self.s}commands{self._where(FINISHED)} ORDER BY id DESC LIMIT 1 OFFSET ?",
                         (*self.key, KEEP_COMMANDS))
            if cut is not None:
                tx.run(f"DELETE FROM {self.s}commands{self._where(FINISHED, 'id <= ?')}", (*self.key, cut[0]))

    def take_over_commands(self, fence: Fence, rerun: tuple[str, ...], message: str) -> list[Command]:
        with self._tx() as tx:
            self._fence(tx, fence)
            now = self._clock(tx)
            left = [rows.command(r) for r in tx.all(
                f"SELECT {rows.COMMAND} FROM {self.s}commands{self._where(RUNNING, OTHER_EPOCH)}",
                (*self.key, fence.epoch))]
            for found in left:
                if found.verb in rerun:
                    self._command_outcome(tx, found.id, "queued", "", None)
                else:  # refused, not failed: nothing went wrong in it that asking again would meet (`warroom step` exits 6)
                    self._command_outcome(tx, found.id, "refused", message, now)
            return left

    def command(self, command_id: int) -> Command | None:
        found = self._read(f"SELECT {rows.COMMAND} FROM {self.s}commands{self._where('id = ?')}", (*self.key, command_id))
        return rows.command(found[0]) if found else None
