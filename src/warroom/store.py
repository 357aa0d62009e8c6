"""The journal and the rollout state, in one SQLite file (WAL mode).

Several processes open the same file at once: a console, a headless runner, CLI verbs
from a script. Each write is one short transaction; intent and state change commit
together so a crash can never leave one without the other.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Collection, Iterator

from .engine.snapshot import JournalEntry
from .secrets import redact

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
    owner TEXT,                    -- the process executing it (engine/ownership.py), JSON
    owner_expires REAL             -- wall time its heartbeat runs out
);
CREATE TABLE IF NOT EXISTS samples (
    ts REAL NOT NULL,
    series TEXT NOT NULL,
    value REAL
);
CREATE INDEX IF NOT EXISTS samples_series_ts ON samples(series, ts);
-- The plan as each console ran it (only what a report reads), so a post-mortem needs no plan file.
CREATE TABLE IF NOT EXISTS plans (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires REAL NOT NULL
);
"""


class StoreError(Exception):
    pass


# SQLITE_CORRUPT and SQLITE_NOTADB, with any of their extended codes.
_DAMAGED_CODES = (11, 26)


class DamagedState(StoreError, sqlite3.DatabaseError):
    """The state file's pages are damaged. Still a DatabaseError for code that catches those;
    a StoreError for the verbs, which print the message (file, and what to do) instead of a traceback."""

    def __init__(self, path: Path, exc: sqlite3.DatabaseError):
        broken, salvaged = f"{path}.broken", path.with_name(f"{path.stem}-recovered{path.suffix}")
        super().__init__(
            f"{path}: the state database is damaged (SQLite: {exc}).\n"
            f"  Keep the broken file: move it aside (mv {path} {broken}). The next start begins a new state,\n"
            f"  which knows nothing of this rollout: check the flags before acting.\n"
            f"  To salvage its journal: sqlite3 {broken} .recover | sqlite3 {salvaged}\n"
            f"  (a sqlite3 without .recover: use .dump and change its last line, ROLLBACK, to COMMIT)\n"
            f"  then read it: warroom journal --state {salvaged}")


def _raise_if_damaged(path: Path, exc: sqlite3.DatabaseError) -> None:
    if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _DAMAGED_CODES:
        raise DamagedState(path, exc) from None


def _checked(name: str):
    """A cursor method that turns damage into DamagedState; anything else is raised as it was."""
    base = getattr(sqlite3.Cursor, name)

    def method(self, *args):
        try:
            return base(self, *args)
        except sqlite3.DatabaseError as exc:
            _raise_if_damaged(self.connection.state_path, exc)
            raise

    return method


class _Cursor(sqlite3.Cursor):
    # Damage can surface on any read: at execute, or while rows are fetched.
    execute = _checked("execute")
    executemany = _checked("executemany")
    fetchone = _checked("fetchone")
    fetchall = _checked("fetchall")
    __next__ = _checked("__next__")


class _Connection(sqlite3.Connection):
    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        self.state_path = Path(database)

    def execute(self, *args):
        return self.cursor(_Cursor).execute(*args)

    def executemany(self, *args):
        return self.cursor(_Cursor).executemany(*args)


class StaleState(Exception):
    """Another process changed the rollout state since it was read."""


class ActionTaken(Exception):
    """Another process took this action over (its owner was judged gone); stop acting on it."""


# A state change computed from the current state inside the transaction: returns the new
# state (None: leave it) and the journal entries; raising refuses the whole commit.
Change = Callable[[dict[str, Any]], tuple[dict[str, Any] | None, list[tuple[str, str, str, dict]]]]


def default_state_path(rollout_name: str) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "warroom"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in rollout_name)
    return base / f"{safe}.sqlite"


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, timeout=15, isolation_level=None, check_same_thread=False, factory=_Connection)
            self._db.execute("PRAGMA busy_timeout = 15000")
            self._db.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed intent survives power loss, which is the point of write-ahead.
            self._db.execute("PRAGMA synchronous = FULL")
            with self._tx():
                for stmt in SCHEMA.split(";"):
                    if stmt.strip():
                        self._db.execute(stmt)
                self._migrate()
        except DamagedState:
            raise
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot open the state database ({exc})") from None

    def _migrate(self) -> None:
        """Columns added since a state file was created (older files keep working)."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(actions)")}
        for column, kind in (("owner", "TEXT"), ("owner_expires", "REAL")):
            if column not in have:
                self._db.execute(f"ALTER TABLE actions ADD COLUMN {column} {kind}")

    # ------------------------------------------------------------ plumbing

    class _Tx:
        def __init__(self, store: "Store"):
            self.store = store

        def __enter__(self):
            self.store._lock.acquire()
            self.store._db.execute("BEGIN IMMEDIATE")
            return self.store._db

        def __exit__(self, exc_type, exc, tb):
            try:
                self.store._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
            finally:
                self.store._lock.release()
            return False

    def _tx(self) -> "Store._Tx":
        return Store._Tx(self)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------ journal

    def _insert(self, db, ts: float, kind: str, message: str, actor: str, action_id: str | None, data: dict) -> JournalEntry:
        message = redact(message)
        payload = redact(json.dumps(data, default=str, sort_keys=True))
        cur = db.execute(
            "INSERT INTO journal (ts, kind, message, actor, action_id, data) VALUES (?, ?, ?, ?, ?, ?)",
            (ts, kind, message, actor, action_id, payload),
        )
        return JournalEntry(cur.lastrowid, ts, kind, message, actor, action_id, json.loads(payload))

    def append(self, ts: float, kind: str, message: str, actor: str, data: dict | None = None, action_id: str | None = None) -> JournalEntry:
        with self._tx() as db:
            return self._insert(db, ts, kind, message, actor, action_id, data or {})

    @staticmethod
    def _entry(row) -> JournalEntry:
        return JournalEntry(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]))

    def entries(self, after: int = 0, limit: int | None = None, action_id: str | None = None) -> list[JournalEntry]:
        sql = "SELECT seq, ts, kind, message, actor, action_id, data FROM journal WHERE seq > ?"
        args: list[Any] = [after]
        if action_id is not None:
            sql += " AND action_id = ?"
            args.append(action_id)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            return [self._entry(r) for r in self._db.execute(sql, args)]

    def iter_entries(self, after: int = 0, kinds: Collection[str] = (), page: int = 2000) -> Iterator[JournalEntry]:
        """Every entry after `after` (of `kinds`, if given), oldest first, read a page at a time:
        a journal of millions of entries streams in bounded memory, and the lock is never held long."""
        sql = "SELECT seq, ts, kind, message, actor, action_id, data FROM journal WHERE seq > ?"
        if kinds:
            sql += f" AND kind IN ({', '.join('?' * len(kinds))})"
        sql += " ORDER BY seq LIMIT ?"
        while True:
            with self._lock:
                rows = self._db.execute(sql, (after, *kinds, page)).fetchall()
            for row in rows:
                yield self._entry(row)
            if len(rows) < page:
                return
            after = rows[-1][0]

    def tail(self, n: int) -> list[JournalEntry]:
        """The newest n entries, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, ts, kind, message, actor, action_id, data FROM journal ORDER BY seq DESC LIMIT ?", (n,)
            ).fetchall()
        return [self._entry(r) for r in rows]

    def journal_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM journal").fetchone()[0]

    def last_seq(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()[0]

    # ------------------------------------------------------------ state

    def load_state(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            row = self._db.execute("SELECT version, body FROM state WHERE id = 1").fetchone()
        return (0, {}) if row is None else (row[0], json.loads(row[1]))

    def state_version(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT version FROM state WHERE id = 1").fetchone()
        return 0 if row is None else row[0]

    def _save(self, db, body: dict[str, Any]) -> int:
        row = db.execute("SELECT version FROM state WHERE id = 1").fetchone()
        version = (row[0] if row else 0) + 1
        db.execute(
            "INSERT INTO state (id, version, body) VALUES (1, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET version = excluded.version, body = excluded.body",
            (version, json.dumps(body, sort_keys=True)),
        )
        return version

    def commit(
        self,
        ts: float,
        entries: list[tuple[str, str, str, dict]] = (),  # (kind, message, actor, data)
        state: dict[str, Any] | None = None,
        action_id: str | None = None,
        new_action: tuple[str, dict] | None = None,  # (kind, intent)
        action_status: str | None = None,
        action_progress: dict | None = None,
        expected_version: int | None = None,
        owner: tuple[str, float] | None = None,
    ) -> tuple[list[JournalEntry], int | None]:
        """One transaction: journal entries, a state change and an action row together.

        With `expected_version`, the commit is refused (StaleState) when another process
        changed the state since we read it, so two consoles cannot overwrite each other.
        `owner` (owner, heartbeat expiry) is recorded on a new action; on an existing one
        the commit is refused (ActionTaken) unless that owner still holds it.
        """
        with self._tx() as db:
            if expected_version is not None:
                row = db.execute("SELECT version FROM state WHERE id = 1").fetchone()
                if (row[0] if row else 0) != expected_version:
                    raise StaleState()
            return self._write(db, ts, entries, state, action_id, new_action, action_status, action_progress, owner)

    def transition(
        self,
        ts: float,
        change: Change,
        *,
        action_id: str | None = None,
        new_action: tuple[str, dict] | None = None,
        action_status: str | None = None,
        action_progress: dict | None = None,
        owner: tuple[str, float] | None = None,
    ) -> tuple[list[JournalEntry], int | None, dict[str, Any]]:
        """Like commit, but the new state is computed from the current one inside the transaction.

        No other process can change the state between the read and the write, so a
        transition is judged against what is true now (a pause made meanwhile, a rollback
        that won), never against an older copy. Returns the state as it now is.
        """
        with self._tx() as db:
            row = db.execute("SELECT body FROM state WHERE id = 1").fetchone()
            current = json.loads(row[0]) if row else {}
            state, entries = change(current)
            written, version = self._write(db, ts, entries, state, action_id, new_action, action_status, action_progress, owner)
        return written, version, current if state is None else state

    def _write(self, db, ts, entries, state, action_id, new_action, action_status, action_progress, owner):
        if new_action is not None:
            db.execute(
                "INSERT INTO actions (id, kind, status, intent, created, owner, owner_expires) VALUES (?, ?, 'pending', ?, ?, ?, ?)",
                (action_id, new_action[0], json.dumps(new_action[1], sort_keys=True), ts, *(owner or (None, None))),
            )
        elif owner is not None and action_id is not None:
            row = db.execute("SELECT owner FROM actions WHERE id = ?", (action_id,)).fetchone()
            if row is not None and row[0] != owner[0]:
                raise ActionTaken(action_id)
        if action_progress is not None:
            db.execute("UPDATE actions SET progress = ? WHERE id = ?", (json.dumps(action_progress), action_id))
        if action_status is not None:
            db.execute("UPDATE actions SET status = ?, finished = ? WHERE id = ?", (action_status, ts, action_id))
        written = [self._insert(db, ts, k, m, a, action_id, d) for k, m, a, d in entries]
        version = self._save(db, state) if state is not None else None
        return written, version

    # ------------------------------------------------------------ actions

    @staticmethod
    def new_action_id() -> str:
        return uuid.uuid4().hex[:12]

    def pending_actions(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, intent, progress, created, owner, owner_expires FROM actions WHERE status = 'pending' ORDER BY created"
            ).fetchall()
        return [
            {"id": r[0], "kind": r[1], "intent": json.loads(r[2]), "progress": json.loads(r[3]), "created": r[4],
             "owner": r[5], "owner_expires": r[6]}
            for r in rows
        ]

    def adopt_action(self, action_id: str, previous_owner: str | None, owner: str, expires: float) -> bool:
        """Take a pending action over from `previous_owner`; False if someone else already did."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE actions SET owner = ?, owner_expires = ? WHERE id = ? AND status = 'pending' AND owner IS ?",
                (owner, expires, action_id, previous_owner),
            )
            return cur.rowcount == 1

    def renew_actions(self, owner: str, expires: float) -> None:
        """The owner's heartbeat: its pending actions stay its own until `expires` (0: hand them over)."""
        with self._tx() as db:
            db.execute("UPDATE actions SET owner_expires = ? WHERE owner = ? AND status = 'pending'", (expires, owner))

    def action_status(self, action_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT status FROM actions WHERE id = ?", (action_id,)).fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------ samples

    def record_samples(self, ts: float, values: dict[str, float | None]) -> None:
        if not values:
            return
        with self._tx() as db:
            db.executemany("INSERT INTO samples (ts, series, value) VALUES (?, ?, ?)", [(ts, k, v) for k, v in values.items()])

    def samples(self, series: str, start: float = 0, end: float = float("inf")) -> Iterator[tuple[float, float | None]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT ts, value FROM samples WHERE series = ? AND ts >= ? AND ts <= ? ORDER BY ts",
                (series, start, end if end != float("inf") else 1e18),
            ).fetchall()
        return iter(rows)

    # ------------------------------------------------------------ the plan as run

    def save_plan(self, ts: float, body: dict[str, Any]) -> None:
        """Keep this version of the plan, unless it is the one kept last."""
        text = json.dumps(body, sort_keys=True)
        with self._tx() as db:
            row = db.execute("SELECT body FROM plans ORDER BY seq DESC LIMIT 1").fetchone()
            if row is None or row[0] != text:
                db.execute("INSERT INTO plans (ts, body) VALUES (?, ?)", (ts, text))

    def latest_plan(self) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM plans ORDER BY seq DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    # ------------------------------------------------------------ leases

    def acquire_lease(self, name: str, holder: str, ttl: float, now: float) -> str:
        """Take or renew a lease; returns the holder after the call (ours if we got it)."""
        with self._tx() as db:
            row = db.execute("SELECT holder, expires FROM leases WHERE name = ?", (name,)).fetchone()
            if row is None or row[0] == holder or row[1] < now:
                db.execute(
                    "INSERT INTO leases (name, holder, expires) VALUES (?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires",
                    (name, holder, now + ttl),
                )
                return holder
            return row[0]

    def lease_holder(self, name: str, now: float) -> str:
        with self._lock:
            row = self._db.execute("SELECT holder, expires FROM leases WHERE name = ?", (name,)).fetchone()
        return row[0] if row and row[1] >= now else ""

    def release_lease(self, name: str, holder: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))
