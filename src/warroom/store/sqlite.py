"""The store in one SQLite file (WAL mode): the embedded default for one bastion.

The engine and any number of consoles and verbs open the same file. Each write is one
short transaction (`BEGIN IMMEDIATE`, so the fence check and the write see the same
lease); `synchronous = FULL`, so a committed intent survives power loss, which is the
point of write-ahead.

Changes are noticed with `PRAGMA data_version` (it moves when another connection
commits; polled every few tens of milliseconds, which costs microseconds), and the
driving engine binds an abstract unix datagram socket named after the file: a client
sends it one byte after committing a command, so a rollback key reaches the engine at
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import select
import socket
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from warroom.core.snapshot import JournalEntry
from warroom.store import rows
from warroom.store.base import (
    SCHEMA_VERSION,
    ActionWrite,
    Command,
    DamagedState,
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

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    actor TEXT NOT NULL,
    action_id TEXT,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS journal_action ON journal(action_id);
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,          -- pending | done | failed | abandoned
    intent TEXT NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    finished REAL,
    epoch INTEGER                  -- the engine lease epoch that owns it
);
CREATE TABLE IF NOT EXISTS samples (
    ts REAL NOT NULL,
    series TEXT NOT NULL,
    value REAL
);
CREATE INDEX IF NOT EXISTS samples_series_ts ON samples(series, ts);
-- The plan as each engine ran it (only what a report reads), so a post-mortem needs no plan file.
CREATE TABLE IF NOT EXISTS plans (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    body TEXT NOT NULL
);
-- The engine lease: one row, whose epoch only ever goes up (fencing).
CREATE TABLE IF NOT EXISTS lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch INTEGER NOT NULL,
    holder TEXT,                   -- Holder.id, NULL when released
    user TEXT, host TEXT, pid INTEGER, started INTEGER,
    acquired REAL, heartbeat REAL, expires REAL,
    speed TEXT NOT NULL DEFAULT '1',
    log TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS standbys (
    holder TEXT PRIMARY KEY,
    user TEXT, host TEXT, pid INTEGER, started INTEGER,
    since REAL NOT NULL,
    heartbeat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    verb TEXT NOT NULL,
    args TEXT NOT NULL,
    actor TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    message TEXT NOT NULL DEFAULT '',
    action_id TEXT,
    finished REAL,
    engine TEXT NOT NULL DEFAULT '',
    epoch INTEGER
);
CREATE INDEX IF NOT EXISTS commands_status ON commands(status, id);
-- Stakeholder updates: drafted, approved, published (the archive of what was told).
CREATE TABLE IF NOT EXISTS updates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL, due REAL NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL,
    text TEXT NOT NULL, facts TEXT NOT NULL DEFAULT '{}', by_whom TEXT NOT NULL DEFAULT '',
    published REAL, archive TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    published REAL NOT NULL,
    body TEXT NOT NULL
);
"""

# SQLITE_CORRUPT and SQLITE_NOTADB, with any of their extended codes: the file's pages are damaged.
_DAMAGED_CODES = (11, 26)
# sqlite3 result codes (the low byte of an extended code) that mean "cannot write now".
_UNWRITABLE = {8: "it is read-only", 10: "a disk I/O error", 13: "the disk is full", 14: "it cannot be opened for writing"}
POLL = 0.05  # seconds between two looks at data_version while waiting


def wake_address(path: Path) -> bytes:
    """The abstract unix socket (Linux) the driving engine of this state file listens on."""
    return b"\0warroom-" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:32].encode()


def _unwritable(exc: sqlite3.Error) -> str | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return _UNWRITABLE.get(code & 0xFF) if isinstance(code, int) else None


class SQLiteStore(SQLCommits):
    shared_fate = True  # every engine of the rollout writes this one file: a full disk stops them all alike

    def __init__(self, path: str | Path, *, create: bool = True, readonly: bool = False):
        """`readonly` (the status page): opened with SQLite's `mode=ro`, so no write can happen through it,
        whatever the code above asks; nothing is created or migrated."""
        self.path = Path(path)
        self.ref = str(self.path)
        if (readonly or not create) and (not self.path.exists() or self.path.stat().st_size == 0):
            raise StoreMissing(f"{self.path}: no rollout is recorded here yet (no engine has run on this state)")
        self._lock = threading.RLock()
        self._wake: socket.socket | None = None
        try:
            if readonly:
                self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=15, isolation_level=None,
                                           check_same_thread=False)
                self._db.execute("PRAGMA busy_timeout = 15000")
                self._check_version()
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=15, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 15000")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            with self._tx():
                self._migrate()
        except StoreError:
            raise
        except sqlite3.DatabaseError as exc:
            damaged = self._error(exc)
            raise damaged if isinstance(damaged, DamagedState) else StoreError(f"{self.path}: cannot open the state database ({exc})") from None
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot open the state database ({exc})") from None

    def _check_version(self) -> int:
        version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: written by a newer warroom (schema {version}, this one reads {SCHEMA_VERSION}); upgrade warroom")
        return version

    def _migrate(self) -> None:
        """Create the schema, or bring an older file's up to date (older files keep working)."""
        version = self._check_version()
        for stmt in SCHEMA.split(";"):
            if stmt.strip():
                self._db.execute(stmt)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(actions)")}
        if "epoch" not in have:  # schema 1: actions were owned by processes, not by a lease epoch
            self._db.execute("ALTER TABLE actions ADD COLUMN epoch INTEGER")
        if version != SCHEMA_VERSION:
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # ------------------------------------------------------------ plumbing

    class _Tx:
        def __init__(self, store: SQLiteStore):
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store._lock.acquire()
            try:
                self.store._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                self.store._lock.release()
                raise self.store._error(exc) from None
            except BaseException:
                self.store._lock.release()
                raise
            return self.store._db

        def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
            try:
                if exc_type is None:
                    self.store._db.execute("COMMIT")
                else:
                    self.store._db.execute("ROLLBACK")
            except sqlite3.Error as failed:
                if exc_type is None:
                    self.store._rollback_quietly()
                    raise self.store._error(failed) from None
            finally:
                self.store._lock.release()
            if isinstance(exc, sqlite3.Error):
                raise self.store._error(exc) from None

    def _rollback_quietly(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # already rolled back by SQLite itself
            self._db.execute("ROLLBACK")

    def _error(self, exc: sqlite3.Error) -> StoreError:
        if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _DAMAGED_CODES:
            path = self.path
            broken, salvaged = f"{path}.broken", path.with_name(f"{path.stem}-recovered{path.suffix}")
            return DamagedState(
                f"{path}: the state database is damaged (SQLite: {exc}).\n"
                f"  Keep the broken file: move it aside (mv {path} {broken}). The next start begins a new state,\n"
                f"  which knows nothing of this rollout: check the flags before acting.\n"
                f"  To salvage its journal: sqlite3 {broken} .recover | sqlite3 {salvaged}\n"
                f"  (a sqlite3 without .recover: use .dump and change its last line, ROLLBACK, to COMMIT)\n"
                f"  then read it: warroom journal --state {salvaged}")
        why = _unwritable(exc)
        if why:
            return StoreUnwritable(f"{self.path}: cannot write the state database: {why} ({exc})")
        return StoreError(f"{self.path}: the state database failed: {exc}")

    def _tx(self) -> SQLiteStore._Tx:
        return SQLiteStore._Tx(self)

    def _read(self, sql: str, args: tuple | list = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    def describe(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}, warroom schema {self._read('PRAGMA user_version')[0][0]}"

    def close(self) -> None:
        with self._lock:
            if self._wake is not None:
                self._wake.close()
                self._wake = None
            self._db.close()

    # ------------------------------------------------------------ journal

    def _insert(self, db: sqlite3.Connection, ts: float, row: Row, action_id: str | None) -> JournalEntry:
        kind, message, actor, payload = rows.journal_text(row)
        cur = db.execute(
            "INSERT INTO journal (ts, kind, message, actor, action_id, data) VALUES (?, ?, ?, ?, ?, ?)",
            (ts, kind, message, actor, action_id, payload),
        )
        return JournalEntry(cur.lastrowid or 0, ts, kind, message, actor, action_id, json.loads(payload))

    _P = "?"

    def _journal(self, after: int) -> tuple[str, list[Any]]:
        return f"SELECT {rows.ENTRY} FROM journal WHERE seq > ?", [after]

    def iter_entries(self, after: int = 0, kinds: Collection[str] = (), page: int = 2000) -> Iterator[JournalEntry]:
        sql = f"SELECT {rows.ENTRY} FROM journal WHERE seq > ?"
        if kinds:
            sql += f" AND kind IN ({', '.join('?' * len(kinds))})"
        sql += " ORDER BY seq LIMIT ?"
        return self._pages(lambda after: self._read(sql, (after, *kinds, page)), after, page)

    def journal_count(self) -> int:
        return self._read("SELECT COUNT(*) FROM journal")[0][0]

    def tail(self, n: int) -> list[JournalEntry]:
        return [rows.entry(r) for r in self._read(f"SELECT {rows.ENTRY} FROM journal ORDER BY seq DESC LIMIT ?", (n,))]

    def last_seq(self) -> int:
        return self._read("SELECT COALESCE(MAX(seq), 0) FROM journal")[0][0]

    # ------------------------------------------------------------ state

    def load_state(self) -> tuple[int, dict[str, Any]]:
        found = self._read("SELECT version, body FROM state WHERE id = 1")
        return (0, {}) if not found else (found[0][0], json.loads(found[0][1]))

    def state_version(self) -> int:
        found = self._read("SELECT version FROM state WHERE id = 1")
        return found[0][0] if found else 0

    # ------------------------------------------------------------ engine writes

    def _fence(self, db: sqlite3.Connection, fence: Fence) -> None:
        row = db.execute("SELECT epoch, holder FROM lease WHERE id = 1").fetchone()
        if row is None or row[0] != fence.epoch or row[1] != fence.holder:
            raise Fenced(fence.epoch, self._lease(db))

    def _state_row(self, db: sqlite3.Connection) -> tuple[int, str] | None:
        return db.execute("SELECT version, body FROM state WHERE id = 1").fetchone()

    def _put_state(self, db: sqlite3.Connection, version: int, text: str) -> None:
        db.execute("INSERT INTO state (id, version, body) VALUES (1, ?, ?) "
                   "ON CONFLICT(id) DO UPDATE SET version = excluded.version, body = excluded.body", (version, text))

    def _write_action(self, db: sqlite3.Connection, ts: float, fence: Fence, action: ActionWrite) -> None:
        if action.new is not None:
            db.execute("INSERT INTO actions (id, kind, status, intent, created, epoch) VALUES (?, ?, 'pending', ?, ?, ?)",
                       (action.id, action.new[0], json.dumps(action.new[1], sort_keys=True), ts, fence.epoch))
            if action.command is not None:
                db.execute("UPDATE commands SET action_id = ? WHERE id = ?", (action.id, action.command))
        if action.progress is not None:
            db.execute("UPDATE actions SET progress = ? WHERE id = ?", (json.dumps(action.progress), action.id))
        if action.status is not None:
            db.execute("UPDATE actions SET status = ?, finished = ? WHERE id = ?", (action.status, ts, action.id))

    def record_samples(self, fence: Fence, ts: float, values: dict[str, float | None]) -> None:
        if not values:
            return
        with self._tx() as db:
            self._fence(db, fence)
            db.executemany("INSERT INTO samples (ts, series, value) VALUES (?, ?, ?)", [(ts, k, v) for k, v in values.items()])

    def save_plan(self, fence: Fence, ts: float, body: dict[str, Any]) -> None:
        text = json.dumps(body, sort_keys=True)
        with self._tx() as db:
            self._fence(db, fence)
            row = db.execute("SELECT body FROM plans ORDER BY seq DESC LIMIT 1").fetchone()
            if row is None or row[0] != text:
                db.execute("INSERT INTO plans (ts, body) VALUES (?, ?)", (ts, text))

    def publish(self, fence: Fence, published: float, body: dict[str, Any]) -> int:
        text = json.dumps(body, sort_keys=True, default=str)
        with self._tx() as db:
            self._fence(db, fence)
            row = db.execute("SELECT seq FROM snapshot WHERE id = 1").fetchone()
            seq = (row[0] if row else 0) + 1
            db.execute("INSERT INTO snapshot (id, seq, published, body) VALUES (1, ?, ?, ?) "
                       "ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, published = excluded.published, body = excluded.body",
                       (seq, published, text))
            return seq

    def adopt_actions(self, fence: Fence) -> list[PendingAction]:
        with self._tx() as db:
            self._fence(db, fence)
            found = [rows.action(r) for r in db.execute(
                f"SELECT {rows.ACTION} FROM actions "
                "WHERE status = 'pending' AND (epoch IS NULL OR epoch != ?) ORDER BY created", (fence.epoch,))]
            db.execute("UPDATE actions SET epoch = ? WHERE status = 'pending'", (fence.epoch,))
            return found

    # ------------------------------------------------------------ reads

    def pending_actions(self) -> list[PendingAction]:
        return [rows.action(r) for r in self._read(f"SELECT {rows.ACTION} FROM actions WHERE status = 'pending' ORDER BY created")]

    def action_status(self, action_id: str) -> str | None:
        found = self._read("SELECT status FROM actions WHERE id = ?", (action_id,))
        return found[0][0] if found else None

    def samples(self, series: str, start: float = 0, end: float = float("inf")) -> Iterator[tuple[float, float | None]]:
        return iter(self._read("SELECT ts, value FROM samples WHERE series = ? AND ts >= ? AND ts <= ? ORDER BY ts",
                               (series, start, end if end != float("inf") else 1e18)))

    def latest_plan(self) -> dict[str, Any] | None:
        found = self._read("SELECT body FROM plans ORDER BY seq DESC LIMIT 1")
        return json.loads(found[0][0]) if found else None

    def snapshot(self) -> StoredSnapshot | None:
        found = self._read("SELECT seq, published, body FROM snapshot WHERE id = 1")
        return StoredSnapshot(found[0][0], found[0][1], json.loads(found[0][2])) if found else None

    def snapshot_seq(self) -> int:
        found = self._read("SELECT seq FROM snapshot WHERE id = 1")
        return found[0][0] if found else 0

    # ------------------------------------------------------------ stakeholder updates

    def put_update(self, fence: Fence, update: StoredUpdate) -> int:
        values = rows.update_values(update)
        with self._tx() as db:
            self._fence(db, fence)
            if update.id:
                db.execute("UPDATE updates SET created = ?, due = ?, reason = ?, status = ?, text = ?, facts = ?, by_whom = ?, "
                           "published = ?, archive = ? WHERE id = ?", (*values, update.id))
                return update.id
            return db.execute(f"INSERT INTO updates ({rows.UPDATE.partition(', ')[2]}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              values).lastrowid or 0

    def updates(self, limit: int = 20) -> list[StoredUpdate]:
        try:
            return [rows.update(r) for r in self._read(f"SELECT {rows.UPDATE} FROM updates ORDER BY id DESC LIMIT ?", (limit,))]
        except StoreError:
            if self._read("SELECT 1 FROM sqlite_master WHERE name = 'updates'"):
                raise
            return []  # a file no engine of this warroom has opened yet (a read-only reader creates nothing)

    # ------------------------------------------------------------ the engine lease

    @staticmethod
    def _lease(db: sqlite3.Connection) -> LeaseInfo | None:
        return rows.lease(SQLiteStore._lease_row(db))

    @staticmethod
    def _lease_row(db: sqlite3.Connection) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = db.execute("SELECT epoch, holder, user, host, pid, started, acquired, heartbeat, expires, speed, log "
                                                 "FROM lease WHERE id = 1").fetchone()
        return row

    def lease(self) -> LeaseInfo | None:
        with self._lock:
            try:
                return self._lease(self._db)
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    def acquire_lease(self, holder: Holder, ttl: float, now: float, *, replacing: str | None = None,
                      speed: str = "1", log: str = "") -> LeaseInfo:
        with self._tx() as db:
            current = self._lease(db)
            if current is not None and current.holder is not None and current.holder.id == holder.id:
                db.execute("UPDATE lease SET heartbeat = ?, expires = ? WHERE id = 1", (now, now + ttl))
            elif current is None or current.holder is None or current.expires < now or current.holder.id == replacing:
                epoch = (current.epoch if current else 0) + 1
                db.execute(
                    "INSERT INTO lease (id, epoch, holder, user, host, pid, started, acquired, heartbeat, expires, speed, log) "
                    "VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET epoch = excluded.epoch, "
                    "holder = excluded.holder, user = excluded.user, host = excluded.host, pid = excluded.pid, "
                    "started = excluded.started, acquired = excluded.acquired, heartbeat = excluded.heartbeat, "
                    "expires = excluded.expires, speed = excluded.speed, log = excluded.log",
                    (epoch, holder.id, holder.user, holder.host, holder.pid, holder.started, now, now, now + ttl, speed, log))
                db.execute("DELETE FROM standbys WHERE holder = ?", (holder.id,))
            return rows.held_lease(self._lease_row(db))

    def renew_lease(self, fence: Fence, ttl: float, now: float) -> LeaseInfo:
        with self._tx() as db:
            self._fence(db, fence)
            db.execute("UPDATE lease SET heartbeat = ?, expires = ? WHERE id = 1", (now, now + ttl))
            return rows.held_lease(self._lease_row(db))

    def release_lease(self, fence: Fence) -> None:
        with self._tx() as db:
            db.execute("UPDATE lease SET holder = NULL, expires = 0 WHERE id = 1 AND epoch = ? AND holder = ?",
                       (fence.epoch, fence.holder))
        self._stop_listening()

    def standby(self, holder: Holder, now: float) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO standbys (holder, user, host, pid, started, since, heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?) "
                       "ON CONFLICT(holder) DO UPDATE SET heartbeat = excluded.heartbeat",
                       (holder.id, holder.user, holder.host, holder.pid, holder.started, now, now))

    def drop_standby(self, holder: Holder) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM standbys WHERE holder = ?", (holder.id,))

    def standbys(self) -> list[StandbyInfo]:
        return [rows.standby(r) for r in self._read("SELECT user, host, pid, started, since, heartbeat, holder FROM standbys ORDER BY since")]

    # ------------------------------------------------------------ commands

    def send_command(self, verb: str, args: dict[str, Any], actor: dict[str, Any], created: float) -> int:
        with self._tx() as db:
            cur = db.execute("INSERT INTO commands (created, verb, args, actor) VALUES (?, ?, ?, ?)",
                             (created, verb, json.dumps(args, sort_keys=True), json.dumps(actor, sort_keys=True)))
            command_id = cur.lastrowid or 0
        self._wake_engine()
        return command_id

    _COMMAND = f"SELECT {rows.COMMAND} FROM commands"

    def claim_command(self, fence: Fence) -> Command | None:
        with self._tx() as db:
            self._fence(db, fence)
            row = db.execute(self._COMMAND + " WHERE status = 'queued' ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute("UPDATE commands SET status = 'running', engine = ?, epoch = ? WHERE id = ?", (fence.holder, fence.epoch, row[0]))
            return rows.command(db.execute(self._COMMAND + " WHERE id = ?", (row[0],)).fetchone())

    def _command_outcome(self, db: sqlite3.Connection, command_id: int, status: str, message: str, finished: float | None) -> None:
        db.execute("UPDATE commands SET status = ?, message = ?, finished = ? WHERE id = ?", (status, message, finished, command_id))

    def _commands_left(self, db: sqlite3.Connection, epoch: int) -> list[tuple]:
        return db.execute(self._COMMAND + " WHERE status = 'running' AND (epoch IS NULL OR epoch != ?)", (epoch,)).fetchall()

    def command(self, command_id: int) -> Command | None:
        found = self._read(self._COMMAND + " WHERE id = ?", (command_id,))
        return rows.command(found[0]) if found else None

    # ------------------------------------------------------------ changes

    def _data_version(self) -> int:
        return self._read("PRAGMA data_version")[0][0]

    def _listen(self) -> socket.socket | None:
        """Bind the wake-up socket (the driving engine only); None when another process has it."""
        if self._wake is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.bind(wake_address(self.path))
            except OSError:
                sock.close()
                return None
            sock.setblocking(False)
            self._wake = sock
        return self._wake

    def _stop_listening(self) -> None:
        with self._lock:
            if self._wake is not None:
                self._wake.close()
                self._wake = None

    def _wake_engine(self) -> None:
        """Best effort, never blocking: a frozen engine's full queue (EAGAIN) or no engine at all
        drops the wake-up; the engine that runs the command finds it on its next look anyway."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.sendto(b"!", wake_address(self.path))
        except OSError:
            pass
        finally:
            sock.close()

    def watch(self, *, commands: bool = False) -> Waiter:
        return _Waiter(self, self._listen() if commands else None)


class _Waiter(Waiter):
    """data_version on the store's own connection (its own commits do not count), plus the wake socket."""

    def __init__(self, store: SQLiteStore, wake: socket.socket | None):
        self.store = store
        self.wake = wake
        self.last = store._data_version()

    def _moved(self) -> bool:
        version = self.store._data_version()
        moved, self.last = version != self.last, version
        return moved

    def _drain(self) -> bool:
        woken = False
        while self.wake is not None:
            try:
                self.wake.recv(64)
                woken = True
            except (BlockingIOError, OSError):
                break
        return woken

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self._drain() | self._moved():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.wake is not None:
                select.select([self.wake], [], [], min(POLL, left))
            else:
                time.sleep(min(POLL, left))

    async def changed(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        if self.wake is not None:
            loop.add_reader(self.wake.fileno(), woken.set)
        try:
            deadline = loop.time() + timeout
            while True:
                if self._drain() | self._moved():
                    return True
                left = deadline - loop.time()
                if left <= 0:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), min(POLL, left))
                woken.clear()
        finally:
            if self.wake is not None and self.store._wake is self.wake:
                loop.remove_reader(self.wake.fileno())
