"""The PostgreSQL dialect: one war room for engines and consoles on several hosts.

`state: postgresql://USER@HOST:PORT/DB` (plan.PostgresState: password by secret reference,
TLS like a Prometheus source's). The store's rules are store/core.py's; what is
PostgreSQL's own:

- **Many rollouts, one database.** Every table is keyed by the rollout (its name, or
  `state.rollout`), in a schema of its own (`warroom`), created and migrated by warroom
  under an advisory lock; a schema written by a newer warroom is refused.
- **Fencing in the same transaction.** Every engine write first locks the rollout's lease
  row (`SELECT … FOR UPDATE`) and checks the epoch and holder; a takeover takes the same
  lock, so no write of a fenced engine can slip in between.
- **The database's clock is the store's.** Lease times, standbys' heartbeats, when a
  command was sent and a snapshot published: all set and compared with the server's
  clock, so engines and clients on hosts whose clocks disagree still agree on whether an
  engine is alive and how old a command is.
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
import select
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from warroom.core import secrets
from warroom.plan.state import PostgresState
from warroom.store.base import StoreError, StoreMissing, StoreUnwritable, Waiter
from warroom.store.core import Layout, SQLStore, Tx
from warroom.store.rows import SQLRow

# The schema this code reads and writes (its own numbering: SQLite files have theirs).
PG_SCHEMA_VERSION = 3  # 3: freezes and stakeholder updates (their tables are created by SCHEMA, IF NOT EXISTS)

# Schema 2: each command row records the session's role that queued it, set by the database itself
# (a trigger on insert and on any write of the column): a client's word about who it is never reaches it.
SENDER = [
    "ALTER TABLE warroom.commands ADD COLUMN IF NOT EXISTS sender TEXT NOT NULL DEFAULT session_user",
    "CREATE OR REPLACE FUNCTION warroom.command_sender() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN NEW.sender := session_user; RETURN NEW; END $$",
    "DROP TRIGGER IF EXISTS command_sender ON warroom.commands",
    "CREATE TRIGGER command_sender BEFORE INSERT OR UPDATE OF sender ON warroom.commands "
    "FOR EACH ROW EXECUTE FUNCTION warroom.command_sender()",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS warroom.freezes (
    id BIGSERIAL PRIMARY KEY,
    scope TEXT NOT NULL,
    reason TEXT NOT NULL,
    until DOUBLE PRECISION,
    by_whom TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    lifted DOUBLE PRECISION,
    lifted_by TEXT
);
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
CONNECT: dict[str, Any] = dict(connect_timeout=5, application_name="warroom", keepalives=1, keepalives_idle=5,
                               keepalives_interval=2, keepalives_count=3, tcp_user_timeout=10000)
MIGRATION_LOCK = 0x77617272  # the advisory lock two engines starting at once migrate under ("warr")
CLOCK = "SELECT extract(epoch FROM clock_timestamp())::float8"
ROLLOUTS = "SELECT rollout FROM warroom.lease UNION SELECT DISTINCT rollout FROM warroom.journal ORDER BY 1"


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


def _pg(query: str) -> str:
    """The core's `?` placeholders as psycopg's (the core's SQL holds no other `?` nor `%`)."""
    return query.replace("?", "%s")


class _Tx:
    def __init__(self, cur: psycopg.Cursor[SQLRow], channel: str):
        self.cur = cur
        self.channel = channel
        self.notified = False

    def one(self, query: str, args: Sequence[Any] = ()) -> SQLRow | None:
        return self.cur.execute(_pg(query), args).fetchone()

    def all(self, query: str, args: Sequence[Any] = ()) -> list[SQLRow]:
        return self.cur.execute(_pg(query), args).fetchall()

    def run(self, query: str, args: Sequence[Any] = ()) -> None:
        self.cur.execute(_pg(query), args)

    def many(self, query: str, args: Sequence[Sequence[Any]]) -> None:
        self.cur.executemany(_pg(query), args)

    def notify(self) -> None:
        if not self.notified:  # sent at commit, to the rollout's channel
            self.cur.execute("SELECT pg_notify(%s, '')", (self.channel,))
            self.notified = True


class PostgresStore(SQLStore):
    shared_fate = False  # engines on other hosts reach the database by other ways: one's outage is not all's
    proves_sender = True  # each command row carries the session's role, written by the database (schema 2)

    def __init__(self, target: PostgresState, *, create: bool = True, readonly: bool = False):
        assert target.rollout, "state_path() keys a PostgreSQL state by its rollout"
        super().__init__(Layout(schema="warroom.", rollout=target.rollout, user="user_name", lock=" FOR UPDATE"))
        self.key_name = target.rollout
        self.ref = str(target)
        self.readonly = readonly
        self.channel = channel(target.rollout)
        self._lock = threading.RLock()
        try:
            self._settings = connection_settings(target)
        except secrets.SecretError as exc:
            raise StoreError(f"state.password: {exc}") from None
        self._db: psycopg.Connection[SQLRow] | None = None
        if readonly:  # every transaction of its session is read-only (the status page's role should only SELECT too)
            self._settings["options"] = "-c default_transaction_read_only=on"
        if readonly:  # a reader checks, never creates nor migrates
            self._check_schema()
        else:
            with self._tx() as tx:
                self._migrate(tx.cur)
        if not create and not self._read("SELECT 1 FROM warroom.lease WHERE rollout = %s UNION ALL "
                                         "SELECT 1 FROM warroom.journal WHERE rollout = %s LIMIT 1", (target.rollout, target.rollout)):
            raise StoreMissing(f"{self.ref}: no rollout is recorded here yet (no engine has run on this state)"
                               + self._others(target.rollout))

    def _others(self, rollout: str) -> str:
        """The rollouts this database does hold, for a message about one it does not."""
        found = [r[0] for r in self._read(ROLLOUTS) if r[0] != rollout]
        return f"; it holds: {', '.join(found[:20])}{' …' if len(found) > 20 else ''}" if found else ""

    def _version(self, cur: psycopg.Cursor[SQLRow]) -> int | None:
        found = cur.execute("SELECT to_regclass('warroom.meta')").fetchone()
        if found is None or found[0] is None:
            return None
        version = cur.execute("SELECT version FROM warroom.meta").fetchone()
        return int(version[0]) if version else None

    def _refuse_newer(self, version: int | None) -> None:
        if version is not None and version > PG_SCHEMA_VERSION:
            raise StoreError(f"{self.ref}: written by a newer warroom (schema {version}, this one reads {PG_SCHEMA_VERSION}); "
                             "upgrade warroom")

    def _check_schema(self) -> None:
        with self._lock:
            try:
                version = self._version(self._connection().cursor())
            except psycopg.Error as exc:
                raise self._error(exc, "cannot read the database") from None
        if version is None:
            raise StoreMissing(f"{self.ref}: no rollout is recorded here yet (no warroom schema in this database)")
        self._refuse_newer(version)

    def _migrate(self, cur: psycopg.Cursor[SQLRow]) -> None:
        """Create the schema, or check the one there (two engines starting at once take turns)."""
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        version = self._version(cur)
        self._refuse_newer(version)
        if version == PG_SCHEMA_VERSION:
            return
        cur.execute("CREATE SCHEMA IF NOT EXISTS warroom")
        cur.execute("CREATE TABLE IF NOT EXISTS warroom.meta (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                cur.execute(statement.encode())
        for statement in SENDER:
            cur.execute(statement.encode())
        cur.execute("INSERT INTO warroom.meta (id, version) VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                    (PG_SCHEMA_VERSION,))

    def schema_version(self) -> int:
        return int(self._read("SELECT version FROM warroom.meta")[0][0])

    def describe(self) -> str:
        server = self._read("SHOW server_version")[0][0]
        tls = self._read("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        return f"PostgreSQL {server}{', TLS' if tls and tls[0][0] else ''}, warroom schema {self.schema_version()}"

    # ------------------------------------------------------------ connections and transactions

    def _connection(self) -> psycopg.Connection[SQLRow]:
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
    def _tx(self, *, quiet: bool = False, expendable: bool = False) -> Iterator[_Tx]:
        with self._lock:
            try:
                db = self._connection()
                with db.transaction(), db.cursor() as cur:
                    if expendable:  # its commit returns before the server flushes its log (≈ 5 ms here, more on a busy disk)
                        cur.execute("SET LOCAL synchronous_commit = off")
                    tx = _Tx(cur, self.channel)
                    yield tx
                    if not quiet:
                        tx.notify()
            except psycopg.Error as exc:
                raise self._error(exc, "the database failed") from None

    def _read(self, query: str, args: Sequence[Any] = ()) -> list[SQLRow]:
        query = _pg(query)
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

    def _clock(self, tx: Tx) -> float:
        found = tx.one(CLOCK)
        assert found is not None
        return float(found[0])

    def now(self) -> float:
        return float(self._read(CLOCK)[0][0])

    def _sender(self, tx: Tx, command_id: int) -> str:
        found = tx.one("SELECT sender FROM warroom.commands WHERE id = ?", (command_id,))
        return str(found[0]) if found else ""

    def _backend_pid(self) -> int | None:
        db = self._db
        return None if db is None or db.closed else db.info.backend_pid

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def watch(self, *, commands: bool = False) -> Waiter:
        # Every write notifies, a command's too: the engine's waiter needs nothing more.
        return _Listener(self)


def rollouts(target: PostgresState) -> list[str]:
    """The rollouts a database holds (for `journal`/`report` given a URL and no rollout)."""
    try:
        with psycopg.connect(autocommit=True, **connection_settings(target)) as db:
            if db.execute("SELECT to_regclass('warroom.lease')").fetchone() in (None, (None,)):
                return []
            return [str(r[0]) for r in db.execute(ROLLOUTS).fetchall()]
    except secrets.SecretError as exc:
        raise StoreError(f"state.password: {exc}") from None
    except psycopg.Error as exc:
        detail = secrets.redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        raise StoreUnwritable(f"{target.url}: cannot reach the database: {detail}") from None


class _Listener(Waiter):
    """LISTEN on a connection of its own; a notification from another connection is a change.

    On an event loop (the engine's) it never blocks: connecting again after an outage is done
    on a worker thread, and notifications are read from the socket when the loop says it is readable.
    """

    def __init__(self, store: PostgresStore):
        self.store = store
        self.conn: psycopg.Connection[Any] | None = None
        self.pending = False  # a change not yet reported (a reconnect: something may have been missed)
        self._open(again=False)

    def _open(self, *, again: bool = True) -> None:
        try:
            conn = psycopg.connect(autocommit=True, **self.store._settings)
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.store.channel)))
            self.conn, self.pending = conn, again
        except psycopg.Error:
            self.conn = None  # the database is away: the next look tries again

    def _lost(self) -> bool:
        return self.conn is None or self.conn.closed

    def _drain(self) -> bool:
        """Take in what arrived, without blocking; True when another connection committed."""
        if self.conn is None or self.conn.closed:
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
            if self._lost():
                self._open()
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
            if self._lost():
                await asyncio.to_thread(self._open)  # up to the connect timeout: never on the loop
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
