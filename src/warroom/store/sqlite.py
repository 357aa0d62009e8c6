"""The SQLite dialect: the store in one file (WAL mode), the embedded default for one bastion.

The engine and any number of consoles and verbs open the same file. Each write is one
short transaction (`BEGIN IMMEDIATE`, so the fence check and the write see the same
lease); `synchronous = FULL`, so a committed intent survives power loss, which is the
point of write-ahead (a snapshot's or samples' commit skips its fsync: `Tx.expendable`). A reader that only reads (`journal`, `report`) opens the file
read-only, so a state on a read-only file system (a backup, a snapshot) can be read.

**The store's clock.** Every process on the file runs on this host, and the host's
monotonic clock is one clock for all of them, whatever each one's wall clock says. The
first process to write in a boot (the engine, as a rule) records how its wall clock stood
against the monotonic one (table `clock`); from then on the store's time is that anchor
plus the monotonic clock, for every process: a client whose wall clock is off judges the
engine's heartbeat exactly as the engine wrote it.

Changes are noticed with `PRAGMA data_version` on a connection of the waiter's own (it
moves when another connection commits; polled every few tens of milliseconds, which costs
microseconds, and never behind a transaction of the store's connection), and the
driving engine binds an abstract unix datagram socket named after the file: a client
sends it one byte after committing a command, so a rollback key reaches the engine at
once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import select
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

from warroom.store.base import SCHEMA_VERSION, DamagedState, StoreError, StoreMissing, StoreUnwritable, Waiter
from warroom.store.core import Layout, SQLStore, Tx
from warroom.store.rows import SQLRow

SCHEMA = """
CREATE TABLE IF NOT EXISTS freezes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    reason TEXT NOT NULL,
    until REAL,
    by_whom TEXT NOT NULL,
    created REAL NOT NULL,
    lifted REAL,
    lifted_by TEXT
);
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
CREATE INDEX IF NOT EXISTS commands_verb ON commands(status, verb, id);  -- schema 3: a rollback is claimed first
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
-- The store's clock (schema 3): wall time = anchor + the host's monotonic clock, in the boot it was set in.
CREATE TABLE IF NOT EXISTS clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    boot TEXT NOT NULL,
    anchor REAL NOT NULL
);
"""

LAYOUT = Layout(schema="", rollout=None, user="user", lock="")  # one rollout a file; BEGIN IMMEDIATE locks it all
# SQLITE_CORRUPT and SQLITE_NOTADB, with any of their extended codes: the file's pages are damaged.
_DAMAGED_CODES = (11, 26)
_CANTOPEN = 14
# sqlite3 result codes (the low byte of an extended code) that mean "cannot write now".
_UNWRITABLE = {8: "it is read-only", 10: "a disk I/O error", 13: "the disk is full", 14: "it cannot be opened for writing"}
POLL = 0.05  # seconds between two looks at data_version while waiting


def wake_address(path: Path) -> bytes:
    """The abstract unix socket (Linux) the driving engine of this state file listens on."""
    return b"\0warroom-" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:32].encode()


def boot_id() -> str:
    """Which boot of this host it is: the monotonic clock starts again at every one."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _code(exc: sqlite3.Error) -> int:
    code = getattr(exc, "sqlite_errorcode", 0)
    return code & 0xFF if isinstance(code, int) else 0


class _Tx:
    """A transaction on the store's connection (sqlite3 speaks `?` already)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def one(self, sql: str, args: Sequence[Any] = ()) -> SQLRow | None:
        found: SQLRow | None = self.db.execute(sql, args).fetchone()
        return found

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[SQLRow]:
        return self.db.execute(sql, args).fetchall()

    def run(self, sql: str, args: Sequence[Any] = ()) -> None:
        self.db.execute(sql, args)

    def many(self, sql: str, args: Sequence[Sequence[Any]]) -> None:
        self.db.executemany(sql, args)

    def notify(self) -> None:
        return None  # data_version moves at every commit of another connection: nothing to send


class SQLiteStore(SQLStore):
    shared_fate = True  # every engine of the rollout writes this one file: a full disk stops them all alike

    def __init__(self, path: str | Path, *, create: bool = True, readonly: bool = False):
        super().__init__(LAYOUT)
        self.path = Path(path)
        self.ref = str(self.path)
        self.readonly = readonly
        if not create and (not self.path.exists() or self.path.stat().st_size == 0):
            raise StoreMissing(f"{self.path}: no rollout is recorded here yet (no engine has run on this state)")
        self._lock = threading.RLock()
        self._wake: socket.socket | None = None
        self._anchor: float | None = None  # the clock's anchor of this boot, once known (it never moves within one)
        self._boot = boot_id()
        try:
            self._db = self._open_readonly() if readonly else self._open()
        except StoreError:
            raise
        except sqlite3.DatabaseError as exc:
            damaged = self._error(exc)
            raise damaged if isinstance(damaged, DamagedState) else StoreError(f"{self.path}: cannot open the state database ({exc})") from None
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot open the state database ({exc})") from None

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # SQLite creates a database 0644 whatever the umask; made here first, it follows the umask (and a setgid
        # folder's group), so a launch run with `umask 002` lets its group write the state (a sign-off over the
        # engine's local socket asks that). Its -wal and -shm files take this file's mode. Cannot: SQLite says why.
        with suppress(OSError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        db = sqlite3.connect(self.path, timeout=15, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 15000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        self._db = db
        with self._tx():
            self._migrate(db)
        return db

    def _open_readonly(self) -> sqlite3.Connection:
        """Read-only: as it is (no migration). On a read-only file system a WAL file without its
        shared-memory file cannot be opened so; then it is opened as immutable (nothing writes it)."""
        uri = f"file:{quote(str(self.path.resolve()))}"
        try:
            db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=15, isolation_level=None, check_same_thread=False)
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if _code(exc) != _CANTOPEN:
                raise
            db = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None, check_same_thread=False)
            version = db.execute("PRAGMA user_version").fetchone()[0]
        self._refuse_newer(version)
        return db

    def _looker(self) -> sqlite3.Connection:
        """A connection of a waiter's own, to look at data_version with: read-only, like a reader's."""
        if self.readonly:
            return self._open_readonly()
        return sqlite3.connect(f"file:{quote(str(self.path.resolve()))}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False)

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: written by a newer warroom (schema {version}, this one reads {SCHEMA_VERSION}); upgrade warroom")

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Create the schema, or bring an older file's up to date (older files keep working)."""
        version = db.execute("PRAGMA user_version").fetchone()[0]
        self._refuse_newer(version)
        for stmt in SCHEMA.split(";"):
            if stmt.strip():
                db.execute(stmt)
        have = {row[1] for row in db.execute("PRAGMA table_info(actions)")}
        if "epoch" not in have:  # schema 1: actions were owned by processes, not by a lease epoch
            db.execute("ALTER TABLE actions ADD COLUMN epoch INTEGER")
        if version != SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # ------------------------------------------------------------ transactions

    @contextmanager
    def _tx(self, *, quiet: bool = False, expendable: bool = False) -> Iterator[_Tx]:
        with self._lock:
            try:
                if expendable:  # WAL is written in order: the next FULL commit's fsync carries this one too
                    self._db.execute("PRAGMA synchronous = NORMAL")  # (SQLite refuses it inside a transaction)
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                self._full_again(expendable)
                raise self._error(exc) from None
            try:
                yield _Tx(self._db)
            except BaseException as failed:
                self._rollback_quietly()
                self._full_again(expendable)
                if isinstance(failed, sqlite3.Error):
                    raise self._error(failed) from None
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback_quietly()
                raise self._error(exc) from None
            finally:
                self._full_again(expendable)

    def _full_again(self, expendable: bool) -> None:
        if expendable:
            with suppress(sqlite3.Error):
                self._db.execute("PRAGMA synchronous = FULL")

    def _rollback_quietly(self) -> None:
        with suppress(sqlite3.Error):  # already rolled back by SQLite itself
            self._db.execute("ROLLBACK")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[SQLRow]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    def _error(self, exc: sqlite3.Error) -> StoreError:
        if _code(exc) in _DAMAGED_CODES:
            path = self.path
            broken, salvaged = f"{path}.broken", path.with_name(f"{path.stem}-recovered{path.suffix}")
            return DamagedState(
                f"{path}: the state database is damaged (SQLite: {exc}).\n"
                f"  Keep the broken file: move it aside (mv {path} {broken}). The next start begins a new state,\n"
                f"  which knows nothing of this rollout: check the flags before acting.\n"
                f"  To salvage its journal: sqlite3 {broken} .recover | sqlite3 {salvaged}\n"
                f"  (a sqlite3 without .recover: use .dump and change its last line, ROLLBACK, to COMMIT)\n"
                f"  then read it: warroom journal --state {salvaged}")
        why = _UNWRITABLE.get(_code(exc))
        if why:
            return StoreUnwritable(f"{self.path}: cannot write the state database: {why} ({exc})")
        return StoreError(f"{self.path}: the state database failed: {exc}")

    # ------------------------------------------------------------ the store's clock

    def _clock(self, tx: Tx) -> float:
        """In a write: the first writer of this boot anchors the clock with its own wall clock."""
        if self._anchor is None:
            found = tx.one("SELECT boot, anchor FROM clock WHERE id = 1")
            if found is not None and found[0] == self._boot:
                self._anchor = float(found[1])
            else:
                anchor = time.time() - time.monotonic()
                tx.run("INSERT INTO clock (id, boot, anchor) VALUES (1, ?, ?) "
                       "ON CONFLICT (id) DO UPDATE SET boot = excluded.boot, anchor = excluded.anchor", (self._boot, anchor))
                self._anchor = anchor
        return self._anchor + time.monotonic()

    def now(self) -> float:
        if self._anchor is None:
            try:
                found = self._read("SELECT boot, anchor FROM clock WHERE id = 1")
            except StoreError:
                found = []  # a file from before the store kept a clock, read-only: nothing of this boot to judge
            if not found or found[0][0] != self._boot:
                return time.time()  # nothing has written in this boot: no engine of it to judge
            self._anchor = float(found[0][1])
        return self._anchor + time.monotonic()

    # ------------------------------------------------------------ the rest

    def describe(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}, warroom schema {self._read('PRAGMA user_version')[0][0]}"

    def close(self) -> None:
        with self._lock:
            if self._wake is not None:
                self._wake.close()
                self._wake = None
            self._db.close()

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

    def _let_go(self) -> None:
        with self._lock:
            if self._wake is not None:
                self._wake.close()
                self._wake = None

    def _sent(self) -> None:
        """Best effort, never blocking: a frozen engine's full queue (EAGAIN) or no engine at all
        drops the wake-up; the engine that runs the command finds it on its next look anyway."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.sendto(b"!", wake_address(self.path))
        except OSError:
            pass  # dropped: said above
        finally:
            sock.close()

    def watch(self, *, commands: bool = False) -> Waiter:
        return _Waiter(self, self._listen() if commands else None)


class _Waiter(Waiter):
    """data_version on a connection of its own (any other connection's commit moves it), plus the wake socket."""

    def __init__(self, store: SQLiteStore, wake: socket.socket | None):
        self.store = store
        self.wake = wake
        try:
            self.db = store._looker()
            self.last = self._data_version()
        except sqlite3.Error as exc:
            raise store._error(exc) from None

    def _data_version(self) -> int:
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def _moved(self) -> bool:
        try:
            version = self._data_version()
        except sqlite3.Error:
            return True  # the file cannot be read now: let the caller look (and say why)
        moved, self.last = version != self.last, version
        return moved

    def _drain(self) -> bool:
        woken = False
        while self.wake is not None:
            try:
                self.wake.recv(64)
                woken = True
            except OSError:
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
                with suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), min(POLL, left))
                woken.clear()
        finally:
            if self.wake is not None and self.store._wake is self.wake:
                loop.remove_reader(self.wake.fileno())

    def close(self) -> None:
        self.db.close()

