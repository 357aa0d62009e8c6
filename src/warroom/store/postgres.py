"""The store in a PostgreSQL database: one war room for engines and consoles on several hosts.

`state: postgresql://USER@HOST:PORT/DB` (plan.PostgresState: password by secret reference,
TLS like a Prometheus source's). The same promises as the SQLite store (store/base.py),
kept the PostgreSQL way:

- **Many rollouts, one database.** Every table is keyed by the rollout (its name, or
  `state.rollout`), in a schema of its own (`warroom`), created and migrated by warroom
  under an advisory lock; a schema written by a newer warroom is refused.
- **Fencing in the same transaction.** Every engine write first locks the rollout's lease
  row (`SELECT … FOR UPDATE`) and checks the epoch and holder; a takeover takes the same
  lock, so no write of a fenced engine can slip in between.
- **Lease times on the database's clock.** Expiry is set and compared with the server's
  clock, so engines on hosts whose clocks disagree still agree on when a lease runs out.
- **Changes by LISTEN/NOTIFY.** Each write transaction notifies the rollout's channel; a
  waiter listens on a connection of its own and ignores its own store's notifications
  (as SQLite's data_version ignores a connection's own commits). No polling of the database.
- **Reconnecting.** A connection found broken is opened again on the next call; an engine
  write that cannot reach the database raises StoreUnwritable, so the engine keeps
  guarding from memory and writes what it held once the database is back.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import select
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from warroom.core import secrets
from warroom.core.snapshot import JournalEntry
from warroom.plan.state import PostgresState
from warroom.store import rows
from warroom.store.base import (
    ActionWrite,
    Command,
    Fence,
    Fenced,
    Holder,
    LeaseInfo,
    PendingAction,
    Row,
    StandbyInfo,
    StoredSnapshot,
    StoredUpdate,
    StoreError,
    StoreMissing,
    StoreUnwritable,
    Waiter,
)
from warroom.store.rows import SQLCommits

# The schema this code reads and writes (its own numbering: SQLite files have theirs).
PG_SCHEMA_VERSION = 2  # 2: stakeholder updates

SCHEMA = """
CREATE TABLE IF NOT EXISTS warroom.journal (
    seq BIGSERIAL PRIMARY KEY,
    rollout TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    actor TEXT NOT NULL,
    action_id TEXT,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS journal_rollout ON warroom.journal (rollout, seq);
CREATE INDEX IF NOT EXISTS journal_action ON warroom.journal (rollout, action_id);
CREATE TABLE IF NOT EXISTS warroom.state (
    rollout TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS warroom.actions (
    rollout TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    intent TEXT NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}',
    created DOUBLE PRECISION NOT NULL,
    finished DOUBLE PRECISION,
    epoch INTEGER,
    PRIMARY KEY (rollout, id)
);
CREATE TABLE IF NOT EXISTS warroom.samples (
    rollout TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    series TEXT NOT NULL,
    value DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS samples_series_ts ON warroom.samples (rollout, series, ts);
CREATE TABLE IF NOT EXISTS warroom.plans (
    seq BIGSERIAL PRIMARY KEY,
    rollout TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS plans_rollout ON warroom.plans (rollout, seq);
CREATE TABLE IF NOT EXISTS warroom.lease (
    rollout TEXT PRIMARY KEY,
    epoch INTEGER NOT NULL,
    holder TEXT,
    user_name TEXT, host TEXT, pid INTEGER, started BIGINT,
    acquired DOUBLE PRECISION, heartbeat DOUBLE PRECISION, expires DOUBLE PRECISION,
    speed TEXT NOT NULL DEFAULT '1',
    log TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS warroom.standbys (
    rollout TEXT NOT NULL,
    holder TEXT NOT NULL,
    user_name TEXT, host TEXT, pid INTEGER, started BIGINT,
    since DOUBLE PRECISION NOT NULL,
    heartbeat DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (rollout, holder)
);
CREATE TABLE IF NOT EXISTS warroom.commands (
    id BIGSERIAL PRIMARY KEY,
    rollout TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    verb TEXT NOT NULL,
    args TEXT NOT NULL,
    actor TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    message TEXT NOT NULL DEFAULT '',
    action_id TEXT,
    finished DOUBLE PRECISION,
    engine TEXT NOT NULL DEFAULT '',
    epoch INTEGER
);
CREATE INDEX IF NOT EXISTS commands_status ON warroom.commands (rollout, status, id);
CREATE TABLE IF NOT EXISTS warroom.updates (
    id BIGSERIAL PRIMARY KEY,
    rollout TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL, due DOUBLE PRECISION NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL,
    text TEXT NOT NULL, facts TEXT NOT NULL DEFAULT '{}', by_whom TEXT NOT NULL DEFAULT '',
    published DOUBLE PRECISION, archive TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS updates_rollout ON warroom.updates (rollout, id);
CREATE TABLE IF NOT EXISTS warroom.snapshot (
    rollout TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    published DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL
);
"""

# Connection settings: a dead network must show as an error within seconds, not hang an engine.
CONNECT = dict(connect_timeout=5, application_name="warroom", keepalives=1, keepalives_idle=5, keepalives_interval=2,
               keepalives_count=3, tcp_user_timeout=10000)
MIGRATION_LOCK = 0x77617272  # the advisory lock two engines starting at once migrate under ("warr")
_LEASE = "SELECT epoch, holder, user_name, host, pid, started, acquired, heartbeat, expires, speed, log FROM warroom.lease WHERE rollout = %s"


def connection_settings(target: PostgresState) -> dict[str, Any]:
    """psycopg.connect's arguments for the plan's `state`: the password resolved from its
    reference (and remembered for redaction), TLS as asked."""
    settings: dict[str, Any] = {"conninfo": target.url, **CONNECT}
    if target.password:
        settings["password"] = secrets.resolve(target.password)
    if target.tls.insecure_skip_verify:
        settings["sslmode"] = "require"  # encrypted, the server's certificate not checked (the opt-out)
    elif target.tls.ca_bundle:
        settings.update(sslmode="verify-full", sslrootcert=target.tls.ca_bundle)
    return settings


def channel(rollout: str) -> str:
    """The NOTIFY channel of a rollout (an identifier: the rollout's name may be any text)."""
    return "warroom_" + hashlib.sha1(rollout.encode()).hexdigest()[:24]


class PostgresStore(SQLCommits):
    shared_fate = False  # engines on other hosts reach the database by other ways: one's outage is not all's

    def __init__(self, target: PostgresState, *, create: bool = True, readonly: bool = False):
        """`readonly` (the status page, whose role should only SELECT): every transaction of its session is
        read-only, and nothing is created or migrated."""
        assert target.rollout, "state_path() keys a PostgreSQL state by its rollout"
        self.key = target.rollout
        self.ref = str(target)
        self.channel = channel(self.key)
        self._lock = threading.RLock()
        try:
            self._settings = connection_settings(target)
        except secrets.SecretError as exc:
            raise StoreError(f"state.password: {exc}") from None
        if readonly:
            self._settings["options"] = "-c default_transaction_read_only=on"
        self._db: psycopg.Connection | None = None
        with self._tx(notify=not readonly) as cur:
            if readonly:
                self._check_version(cur)
            else:
                self._migrate(cur)
            if not create and cur.execute("SELECT 1 FROM warroom.lease WHERE rollout = %s UNION ALL "
                                          "SELECT 1 FROM warroom.journal WHERE rollout = %s LIMIT 1", (self.key, self.key)).fetchone() is None:
                raise StoreMissing(f"{self.ref}: no rollout is recorded here yet (no engine has run on this state)")

    def _check_version(self, cur: psycopg.Cursor) -> int | None:
        """The schema's version (None: none yet); a newer one than this code reads is refused."""
        version = None
        if rows.one(cur.execute("SELECT to_regclass('warroom.meta')").fetchone())[0] is not None:
            found = cur.execute("SELECT version FROM warroom.meta").fetchone()
            version = found[0] if found else None
        if version is not None and version > PG_SCHEMA_VERSION:
            raise StoreError(f"{self.ref}: written by a newer warroom (schema {version}, this one reads {PG_SCHEMA_VERSION}); "
                             "upgrade warroom")
        if version is None and self._settings.get("options"):
            raise StoreMissing(f"{self.ref}: no warroom schema here yet (no engine has run on this state)")
        return version

    def _migrate(self, cur: psycopg.Cursor) -> None:
        """Create the schema, or check the one there (two engines starting at once take turns)."""
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        version = self._check_version(cur)
        if version == PG_SCHEMA_VERSION:
            return
        cur.execute("CREATE SCHEMA IF NOT EXISTS warroom")
        cur.execute("CREATE TABLE IF NOT EXISTS warroom.meta (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                cur.execute(statement)
        cur.execute("INSERT INTO warroom.meta (id, version) VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                    (PG_SCHEMA_VERSION,))

    def schema_version(self) -> int:
        return self._read("SELECT version FROM warroom.meta")[0][0]

    def describe(self) -> str:
        server = self._read("SHOW server_version")[0][0]
        tls = self._read("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        return f"PostgreSQL {server}{', TLS' if tls and tls[0][0] else ''}, warroom schema {self.schema_version()}"

    # ------------------------------------------------------------ plumbing

    def _connection(self) -> psycopg.Connection:
        if self._db is None or self._db.closed or self._db.broken:
            self._db = None
            try:
                self._db = psycopg.connect(autocommit=True, **self._settings)
            except psycopg.Error as exc:
                raise self._error(exc, "cannot reach the database") from None
        return self._db

    def _error(self, exc: psycopg.Error, what: str) -> StoreError:
        detail = secrets.redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        message = f"{self.ref}: {what}: {detail}"
        # Cannot reach it, or it went away mid-write: the engine holds what it writes and retries.
        return StoreUnwritable(message) if isinstance(exc, psycopg.OperationalError) else StoreError(message)

    @contextmanager
    def _tx(self, *, notify: bool = True) -> Iterator[psycopg.Cursor]:
        """One transaction; written with a notification to the rollout's channel (sent on commit).
        A look that may change nothing (`notify=False`) calls `_notify` itself when it does."""
        with self._lock:
            try:
                db = self._connection()
                with db.transaction(), db.cursor() as cur:
                    yield cur
                    if notify:
                        self._notify(cur)
            except psycopg.Error as exc:
                raise self._error(exc, "the database failed") from None

    def _notify(self, cur: psycopg.Cursor) -> None:
        cur.execute("SELECT pg_notify(%s, '')", (self.channel,))

    def _read(self, query: str, args: tuple | list = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._connection().execute(query, args).fetchall()
            except psycopg.Error as exc:
                if self._db is not None and not self._db.broken:
                    raise self._error(exc, "cannot read the database") from None
            try:  # the connection broke since the last call (a restart, a proxy): once more on a new one
                return self._connection().execute(query, args).fetchall()
            except psycopg.Error as exc:
                raise self._error(exc, "cannot read the database") from None

    def _backend_pid(self) -> int | None:
        db = self._db
        return None if db is None or db.closed else db.info.backend_pid

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # ------------------------------------------------------------ journal

    def _insert(self, db: psycopg.Cursor, ts: float, row: Row, action_id: str | None) -> JournalEntry:
        kind, message, actor, payload = rows.journal_text(row)
        seq = rows.one(db.execute("INSERT INTO warroom.journal (rollout, ts, kind, message, actor, action_id, data) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING seq",
                         (self.key, ts, kind, message, actor, action_id, payload)).fetchone())[0]
        return JournalEntry(seq, ts, kind, message, actor, action_id, json.loads(payload))

    _ENTRIES = f"SELECT {rows.ENTRY} FROM warroom.journal WHERE rollout = %s AND seq > %s"

    _P = "%s"

    def _journal(self, after: int) -> tuple[str, list[Any]]:
        return self._ENTRIES, [self.key, after]

    def iter_entries(self, after: int = 0, kinds: Collection[str] = (), page: int = 2000) -> Iterator[JournalEntry]:
        query = self._ENTRIES + (" AND kind = ANY(%s)" if kinds else "") + " ORDER BY seq LIMIT %s"
        return self._pages(lambda after: self._read(query, (self.key, after, *([list(kinds)] if kinds else []), page)), after, page)

    def journal_count(self) -> int:
        return self._read("SELECT COUNT(*) FROM warroom.journal WHERE rollout = %s", (self.key,))[0][0]

    def tail(self, n: int) -> list[JournalEntry]:
        return [rows.entry(r) for r in self._read(
            f"SELECT {rows.ENTRY} FROM warroom.journal WHERE rollout = %s ORDER BY seq DESC LIMIT %s", (self.key, n))]

    def last_seq(self) -> int:
        return self._read("SELECT COALESCE(MAX(seq), 0) FROM warroom.journal WHERE rollout = %s", (self.key,))[0][0]

    # ------------------------------------------------------------ state

    def load_state(self) -> tuple[int, dict[str, Any]]:
        found = self._read("SELECT version, body FROM warroom.state WHERE rollout = %s", (self.key,))
        return (0, {}) if not found else (found[0][0], json.loads(found[0][1]))

    def state_version(self) -> int:
        found = self._read("SELECT version FROM warroom.state WHERE rollout = %s", (self.key,))
        return found[0][0] if found else 0

    # ------------------------------------------------------------ engine writes

    def _fence(self, db: psycopg.Cursor, fence: Fence) -> None:
        row = db.execute("SELECT epoch, holder FROM warroom.lease WHERE rollout = %s FOR UPDATE", (self.key,)).fetchone()
        if row is None or row[0] != fence.epoch or row[1] != fence.holder:
            raise Fenced(fence.epoch, rows.lease(db.execute(_LEASE, (self.key,)).fetchone()))

    def _state_row(self, db: psycopg.Cursor) -> tuple[int, str] | None:
        return db.execute("SELECT version, body FROM warroom.state WHERE rollout = %s", (self.key,)).fetchone()

    def _put_state(self, db: psycopg.Cursor, version: int, text: str) -> None:
        db.execute("INSERT INTO warroom.state (rollout, version, body) VALUES (%s, %s, %s) "
                   "ON CONFLICT (rollout) DO UPDATE SET version = excluded.version, body = excluded.body", (self.key, version, text))

    def _write_action(self, db: psycopg.Cursor, ts: float, fence: Fence, action: ActionWrite) -> None:
        where = " WHERE rollout = %s AND id = %s"
        if action.new is not None:
            db.execute("INSERT INTO warroom.actions (rollout, id, kind, status, intent, created, epoch) VALUES (%s, %s, %s, 'pending', %s, %s, %s)",
                       (self.key, action.id, action.new[0], json.dumps(action.new[1], sort_keys=True), ts, fence.epoch))
            if action.command is not None:
                db.execute("UPDATE warroom.commands SET action_id = %s" + where, (action.id, self.key, action.command))
        if action.progress is not None:
            db.execute("UPDATE warroom.actions SET progress = %s" + where, (json.dumps(action.progress), self.key, action.id))
        if action.status is not None:
            db.execute("UPDATE warroom.actions SET status = %s, finished = %s" + where, (action.status, ts, self.key, action.id))

    def record_samples(self, fence: Fence, ts: float, values: dict[str, float | None]) -> None:
        if not values:
            return
        with self._tx() as db:
            self._fence(db, fence)
            db.executemany("INSERT INTO warroom.samples (rollout, ts, series, value) VALUES (%s, %s, %s, %s)",
                           [(self.key, ts, k, v) for k, v in values.items()])

    def save_plan(self, fence: Fence, ts: float, body: dict[str, Any]) -> None:
        text = json.dumps(body, sort_keys=True)
        with self._tx() as db:
            self._fence(db, fence)
            row = db.execute("SELECT body FROM warroom.plans WHERE rollout = %s ORDER BY seq DESC LIMIT 1", (self.key,)).fetchone()
            if row is None or row[0] != text:
                db.execute("INSERT INTO warroom.plans (rollout, ts, body) VALUES (%s, %s, %s)", (self.key, ts, text))

    def publish(self, fence: Fence, published: float, body: dict[str, Any]) -> int:
        text = json.dumps(body, sort_keys=True, default=str)
        with self._tx() as db:
            self._fence(db, fence)
            return rows.one(db.execute("INSERT INTO warroom.snapshot (rollout, seq, published, body) VALUES (%s, 1, %s, %s) "
                              "ON CONFLICT (rollout) DO UPDATE SET seq = warroom.snapshot.seq + 1, published = excluded.published, "
                              "body = excluded.body RETURNING seq", (self.key, published, text)).fetchone())[0]

    def adopt_actions(self, fence: Fence) -> list[PendingAction]:
        with self._tx() as db:
            self._fence(db, fence)
            found = [rows.action(r) for r in db.execute(
                f"SELECT {rows.ACTION} FROM warroom.actions WHERE rollout = %s AND status = 'pending' "
                "AND (epoch IS NULL OR epoch != %s) ORDER BY created", (self.key, fence.epoch))]
            db.execute("UPDATE warroom.actions SET epoch = %s WHERE rollout = %s AND status = 'pending'", (fence.epoch, self.key))
            return found

    # ------------------------------------------------------------ reads

    def pending_actions(self) -> list[PendingAction]:
        return [rows.action(r) for r in self._read(
            f"SELECT {rows.ACTION} FROM warroom.actions WHERE rollout = %s AND status = 'pending' ORDER BY created", (self.key,))]

    def action_status(self, action_id: str) -> str | None:
        found = self._read("SELECT status FROM warroom.actions WHERE rollout = %s AND id = %s", (self.key, action_id))
        return found[0][0] if found else None

    def samples(self, series: str, start: float = 0, end: float = float("inf")) -> Iterator[tuple[float, float | None]]:
        return iter(self._read("SELECT ts, value FROM warroom.samples WHERE rollout = %s AND series = %s AND ts >= %s AND ts <= %s "
                               "ORDER BY ts", (self.key, series, start, end)))

    def latest_plan(self) -> dict[str, Any] | None:
        found = self._read("SELECT body FROM warroom.plans WHERE rollout = %s ORDER BY seq DESC LIMIT 1", (self.key,))
        return json.loads(found[0][0]) if found else None

    def snapshot(self) -> StoredSnapshot | None:
        found = self._read("SELECT seq, published, body FROM warroom.snapshot WHERE rollout = %s", (self.key,))
        return StoredSnapshot(found[0][0], found[0][1], json.loads(found[0][2])) if found else None

    def snapshot_seq(self) -> int:
        found = self._read("SELECT seq FROM warroom.snapshot WHERE rollout = %s", (self.key,))
        return found[0][0] if found else 0

    # ------------------------------------------------------------ stakeholder updates

    def put_update(self, fence: Fence, update: StoredUpdate) -> int:
        values = rows.update_values(update)
        with self._tx() as db:
            self._fence(db, fence)
            if update.id:
                db.execute("UPDATE warroom.updates SET created = %s, due = %s, reason = %s, status = %s, text = %s, facts = %s, "
                           "by_whom = %s, published = %s, archive = %s WHERE rollout = %s AND id = %s", (*values, self.key, update.id))
                return update.id
            return int(rows.one(db.execute(
                f"INSERT INTO warroom.updates (rollout, {rows.UPDATE.partition(', ')[2]}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id", (self.key, *values)).fetchone())[0])

    def updates(self, limit: int = 20) -> list[StoredUpdate]:
        return [rows.update(r) for r in self._read(
            f"SELECT {rows.UPDATE} FROM warroom.updates WHERE rollout = %s ORDER BY id DESC LIMIT %s", (self.key, limit))]

    # ------------------------------------------------------------ the engine lease

    def lease(self) -> LeaseInfo | None:
        found = self._read(_LEASE, (self.key,))
        return rows.lease(found[0]) if found else None

    @staticmethod
    def _now(db: psycopg.Cursor) -> float:
        """The database's wall clock: every host's engine judges leases by this one clock."""
        return rows.one(db.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone())[0]

    def acquire_lease(self, holder: Holder, ttl: float, now: float, *, replacing: str | None = None,
                      speed: str = "1", log: str = "") -> LeaseInfo:
        with self._tx(notify=False) as db:  # a standby tries every second: only a change of holder is news
            # The row exists before anyone locks it, so two first engines serialise on it too.
            db.execute("INSERT INTO warroom.lease (rollout, epoch) VALUES (%s, 0) ON CONFLICT (rollout) DO NOTHING", (self.key,))
            current = rows.lease(db.execute(_LEASE + " FOR UPDATE", (self.key,)).fetchone())
            assert current is not None
            now = self._now(db)
            if current.holder is not None and current.holder.id == holder.id:
                db.execute("UPDATE warroom.lease SET heartbeat = %s, expires = %s WHERE rollout = %s", (now, now + ttl, self.key))
            elif current.holder is None or current.expires < now or current.holder.id == replacing:
                db.execute("UPDATE warroom.lease SET epoch = %s, holder = %s, user_name = %s, host = %s, pid = %s, started = %s, "
                           "acquired = %s, heartbeat = %s, expires = %s, speed = %s, log = %s WHERE rollout = %s",
                           (current.epoch + 1, holder.id, holder.user, holder.host, holder.pid, holder.started,
                            now, now, now + ttl, speed, log, self.key))
                db.execute("DELETE FROM warroom.standbys WHERE rollout = %s AND holder = %s", (self.key, holder.id))
                self._notify(db)
            return rows.held_lease(db.execute(_LEASE, (self.key,)).fetchone())

    def renew_lease(self, fence: Fence, ttl: float, now: float) -> LeaseInfo:
        with self._tx() as db:
            self._fence(db, fence)
            now = self._now(db)
            db.execute("UPDATE warroom.lease SET heartbeat = %s, expires = %s WHERE rollout = %s", (now, now + ttl, self.key))
            return rows.held_lease(db.execute(_LEASE, (self.key,)).fetchone())

    def release_lease(self, fence: Fence) -> None:
        with self._tx() as db:
            db.execute("UPDATE warroom.lease SET holder = NULL, expires = 0 WHERE rollout = %s AND epoch = %s AND holder = %s",
                       (self.key, fence.epoch, fence.holder))

    def standby(self, holder: Holder, now: float) -> None:
        with self._tx() as db:
            now = self._now(db)
            db.execute("INSERT INTO warroom.standbys (rollout, holder, user_name, host, pid, started, since, heartbeat) "
                       "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (rollout, holder) DO UPDATE SET heartbeat = excluded.heartbeat",
                       (self.key, holder.id, holder.user, holder.host, holder.pid, holder.started, now, now))

    def drop_standby(self, holder: Holder) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM warroom.standbys WHERE rollout = %s AND holder = %s", (self.key, holder.id))

    def standbys(self) -> list[StandbyInfo]:
        return [rows.standby(r) for r in self._read(
            "SELECT user_name, host, pid, started, since, heartbeat, holder FROM warroom.standbys WHERE rollout = %s ORDER BY since",
            (self.key,))]

    # ------------------------------------------------------------ commands

    _COMMAND = f"SELECT {rows.COMMAND} FROM warroom.commands WHERE rollout = %s"

    def send_command(self, verb: str, args: dict[str, Any], actor: dict[str, Any], created: float) -> int:
        with self._tx() as db:  # its notification wakes the driving engine, wherever it runs
            return rows.one(db.execute(
                "INSERT INTO warroom.commands (rollout, created, verb, args, actor) VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (self.key, created, verb, json.dumps(args, sort_keys=True), json.dumps(actor, sort_keys=True))).fetchone())[0]

    def claim_command(self, fence: Fence) -> Command | None:
        with self._tx(notify=False) as db:  # the engine looks at every wake: an empty queue is no news
            self._fence(db, fence)
            row = db.execute(self._COMMAND + " AND status = 'queued' ORDER BY id LIMIT 1 FOR UPDATE", (self.key,)).fetchone()
            if row is None:
                return None
            self._notify(db)
            db.execute("UPDATE warroom.commands SET status = 'running', engine = %s, epoch = %s WHERE id = %s",
                       (fence.holder, fence.epoch, row[0]))
            return rows.command(rows.one(db.execute(self._COMMAND + " AND id = %s", (self.key, row[0])).fetchone()))

    def _command_outcome(self, db: psycopg.Cursor, command_id: int, status: str, message: str, finished: float | None) -> None:
        db.execute("UPDATE warroom.commands SET status = %s, message = %s, finished = %s WHERE rollout = %s AND id = %s",
                   (status, message, finished, self.key, command_id))

    def _commands_left(self, db: psycopg.Cursor, epoch: int) -> list[tuple]:
        return db.execute(self._COMMAND + " AND status = 'running' AND (epoch IS NULL OR epoch != %s)", (self.key, epoch)).fetchall()

    def command(self, command_id: int) -> Command | None:
        found = self._read(self._COMMAND + " AND id = %s", (self.key, command_id))
        return rows.command(found[0]) if found else None

    # ------------------------------------------------------------ changes

    def watch(self, *, commands: bool = False) -> Waiter:
        # Every write notifies, a command's too: the engine's waiter needs nothing more.
        return _Listener(self)


class _Listener(Waiter):
    """LISTEN on a connection of its own; a notification from another connection is a change."""

    def __init__(self, store: PostgresStore):
        self.store = store
        self.conn: psycopg.Connection | None = None
        self.pending = False  # a change not yet reported (a reconnect: something may have been missed)
        self._open(again=False)

    def _open(self, *, again: bool = True) -> None:
        try:
            self.conn = psycopg.connect(autocommit=True, **self.store._settings)
            self.conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.store.channel)))
            self.pending = again
        except psycopg.Error:
            self.conn = None  # the database is away: the next look tries again

    def _drain(self) -> bool:
        """Take in what arrived, without blocking; True when another connection committed."""
        if self.conn is None or self.conn.closed:
            self._open()
        if self.conn is None:
            return False
        mine = self.store._backend_pid()
        found = self.pending
        self.pending = False
        try:
            self.conn.pgconn.consume_input()
            while (note := self.conn.pgconn.notifies()) is not None:
                found = found or note.be_pid != mine
        except psycopg.Error:
            self.conn.close()
            self.conn = None
            return True  # the connection dropped: what happened meanwhile is unknown, so look
        return found

    def _fileno(self) -> int | None:
        return self.conn.pgconn.socket if self.conn is not None and not self.conn.closed else None

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self._drain():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            fd = self._fileno()
            if fd is None:
                time.sleep(min(1.0, left))  # the database is away: try again shortly
            else:
                select.select([fd], [], [], left)

    async def changed(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._drain():
                return True
            left = deadline - loop.time()
            if left <= 0:
                return False
            fd = self._fileno()
            readable = asyncio.Event()
            if fd is not None:
                loop.add_reader(fd, readable.set)
            try:
                await asyncio.wait_for(readable.wait(), left if fd is not None else min(1.0, left))
            except TimeoutError:
                pass
            finally:
                if fd is not None:
                    loop.remove_reader(fd)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
