"""A rollback behind a flood of commands: 3,000 `pause` commands queued ahead of it (as if that many
clients sent them while the engine stood still: it is SIGSTOPped meanwhile, and they are written in
one transaction so the flood, not its sending, is measured), then `rollback` sent as a client sends
it; the engine SIGCONTed; the time from then to the rollback's intent in the journal. Baseline in the
same run: the same rollback with nothing queued ahead. Target: every run within 150 ms, the rollback
key's own budget. On SQLite, and on PostgreSQL when a cluster runs (under CI its absence fails). The test (tests/store/test_command_bounds.py) asserts only the
order: the rollback's intent comes before any of the queued pauses ran.
WARROOM_BENCH_RUNS sets the runs per case (default 5).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from common import ROOT, SMOKE, emit, summary
from key_rollback import PG_PASSWORD, database

sys.path.insert(0, str(ROOT))
import psycopg  # noqa: E402

from warroom.core.identity import current_actor  # noqa: E402
from warroom.plan.model import PostgresState  # noqa: E402
from warroom.store import open_store  # noqa: E402
from warroom.store.base import Store  # noqa: E402

RUNS = 1 if SMOKE else int(os.environ.get("WARROOM_BENCH_RUNS", "5"))
FLOOD = 300 if SMOKE else 3000
TARGET = 0.150  # seconds: a rollback key's own budget (bench/key_rollback.py), flood or no flood


def warroom(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "warroom", *args], check=True, capture_output=True, timeout=120)


def flood(ref: Path | PostgresState, url: str | None, count: int, created: float) -> None:
    actor = json.dumps(current_actor().to_json())
    if isinstance(ref, PostgresState):
        with psycopg.connect(url, password=os.environ[PG_PASSWORD], autocommit=True) as db, db.transaction():
            db.cursor().executemany("INSERT INTO warroom.commands (rollout, created, verb, args, actor) VALUES (%s, %s, 'pause', '{}', %s)",
                                    [(ref.rollout, created, actor)] * count)
    else:
        with sqlite3.connect(ref) as db:
            db.executemany("INSERT INTO commands (created, verb, args, actor) VALUES (?, 'pause', '{}', ?)", [(created, actor)] * count)


def intent_at(store: Store, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e.ts for e in store.iter_entries(kinds=("rollback.intent",))]
        if found:
            return found[0]
        time.sleep(0.002)
    raise TimeoutError("no rollback.intent in the journal")


def one_run(work: Path, state: Any, ref: Path | PostgresState, url: str | None, queued: int) -> float:
    path = work / "plan.yaml"
    path.write_text(yaml.safe_dump({
        "rollout": {"name": "bench-flood", "environment": "drill"},
        "sources": {"sim": {"type": "simulator", "seed": 5}},
        "flag_provider": {"provider": "local", "path": str(work / "flags.json")},
        "state": state,
        "poll_interval": "1s",
        "automation": {"step_up": "manual"},
        "panes": [{"id": "errors", "title": "Error rate", "query": "error_rate", "unit": "ratio"}],
        "phases": [{"name": "Canary 5%", "flags": {"feature": 5}}, {"name": "All", "flags": {"feature": 100}}],
    }))
    warroom("up", str(path))
    try:
        warroom("step", str(path))
        store = open_store(ref, create=False)
        try:
            lease = store.lease()
            assert lease is not None and lease.holder is not None
            engine = lease.holder.pid
            os.kill(engine, signal.SIGSTOP)  # the engine stands still while the flood queues up
            try:
                if queued:
                    flood(ref, url, queued, store.now())
                store.send_command("rollback", {"reason": "bench"}, current_actor().to_json())
            finally:
                woken = time.time()
                os.kill(engine, signal.SIGCONT)
            return intent_at(store) - woken
        finally:
            store.close()
    finally:
        subprocess.run([sys.executable, "-m", "warroom", "down", str(path), "--force"], capture_output=True, timeout=120)


def main() -> None:
    figures: dict[str, dict[str, list[float]]] = {}
    with database() as url, tempfile.TemporaryDirectory() as logs:
        os.environ["XDG_STATE_HOME"] = logs
        for _ in range(RUNS):
            for queued in (FLOOD, 0):  # interleaved: both see the same machine's moods
                with tempfile.TemporaryDirectory() as tmp:
                    work = Path(tmp)
                    figures.setdefault("sqlite", {}).setdefault(str(queued), []).append(
                        one_run(work, str(work / "state.sqlite"), work / "state.sqlite", None, queued))
                if url is not None:
                    key = f"bench-flood-{uuid.uuid4().hex[:8]}"
                    state = {"url": url, "password": f"env:{PG_PASSWORD}", "rollout": key}
                    with tempfile.TemporaryDirectory() as tmp:
                        figures.setdefault("postgres", {}).setdefault(str(queued), []).append(
                            one_run(Path(tmp), state, PostgresState(url=url, password=f"env:{PG_PASSWORD}", rollout=key), url, queued))
    for store, runs in figures.items():
        behind, alone = summary(runs[str(FLOOD)]), summary(runs["0"])
        print(f"{store}: a rollback behind {FLOOD} queued commands reached its intent in p50 {behind['median'] * 1000:.0f} ms "
              f"(max {behind['max'] * 1000:.0f} ms, n={behind['n']}); alone p50 {alone['median'] * 1000:.0f} ms")
        emit(f"rollback_after_flood_{store}", {"unit": "s", **behind, "queued": FLOOD, "baseline": alone["median"],
                                               "target": TARGET, "met": behind["max"] <= TARGET})


if __name__ == "__main__":
    main()
