"""A state database with damaged pages: every verb names the file and says what to do, never a traceback."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import sample_variant
from warroom.engine.lease import this_process
from warroom.store import open_store as Store

WARROOM = [sys.executable, "-m", "warroom"]
PAGE = 4096


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> tuple[Path, Path]:
    """A real launch's state (run headless, then a long journal), with the middle of the file overwritten."""
    tmp = tmp_path_factory.mktemp("damaged")
    plan = sample_variant(tmp)
    subprocess.run([*WARROOM, "run", "--headless", str(plan), "--speed", "max", "--for", "2h"], check=True,
                   capture_output=True, stdin=subprocess.DEVNULL)
    store = Store(tmp / "state.sqlite")
    fence = store.acquire_lease(this_process(), 60).fence()  # an engine's: the journal is written under a lease
    # Enough pages that the journal's leaves fill the middle of the file: one transaction (as a store
    # that held its writes commits them), not 3000 fsyncs.
    store.commit_many(fence, [(1_800_000_000.0 + i, ("source.error", f"source service: timeout after 5s ({i})", "warroom (automatic)", {}), None)
                              for i in range(3000)], store.load_state()[1], after=store.last_seq())
    store.release_lease(fence)
    store.close()
    db = tmp / "state.sqlite"
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0
    data = bytearray(db.read_bytes())
    pages = len(data) // PAGE
    assert pages > 50
    for page in range(2, pages - 2):  # page 1 (the schema) and the last pages survive: the file still opens
        data[page * PAGE:(page + 1) * PAGE] = b"\xa5" * PAGE
    db.write_bytes(bytes(data))
    try:
        verdict = sqlite3.connect(db).execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        verdict = [(str(exc),)]
    assert verdict != [("ok",)]
    return plan, db


@pytest.mark.parametrize("verb", [["status"], ["journal"], ["report"], ["report", "--format", "html"],
                                  ["run", "--headless", "--speed", "max", "--for", "1m"], ["rollback"], ["tick", "1"], ["check"]])
def test_every_verb_names_the_damaged_file_and_what_to_do(damaged, verb, tmp_path):
    plan, db = damaged
    state = tmp_path / db.name  # each verb on its own copy: none of them may repair or replace it
    shutil.copy(db, state)
    run = subprocess.run([*WARROOM, verb[0], str(plan), "--state", str(state), *verb[1:]], capture_output=True, text=True,
                         timeout=120, stdin=subprocess.DEVNULL)
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr
    assert f"warroom: {state}: the state database is damaged (SQLite: database disk image is malformed)." in run.stderr
    assert f"move it aside (mv {state} {state}.broken)" in run.stderr
    assert f"sqlite3 {state}.broken .recover | sqlite3 " in run.stderr
    assert state.read_bytes() == db.read_bytes()  # the broken file is kept as it was


def test_a_file_that_is_no_database_at_all(tmp_path):
    junk = tmp_path / "state.sqlite"
    junk.write_bytes(b"\x00garbage" * 1000)
    run = subprocess.run([*WARROOM, "journal", "--state", str(junk)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert f"{junk}: the state database is damaged (SQLite: file is not a database)" in run.stderr
