"""Engine processes as tests see them: find the one driving a state file, wait for it, stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

from tests.support.terminal import running
from tests.support.waiting import DEADLINE, NeverHappened, until


def standby_pids(state: Path) -> list[int]:
    if not state.exists():
        return []
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5) as db:
            return [pid for (pid,) in db.execute("SELECT pid FROM standbys")]
    except sqlite3.Error:
        return []


def engine_pid(state: Path) -> int | None:
    """The pid holding the state's engine lease (read straight from the file: no process start)."""
    if not state.exists():
        return None
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute("SELECT pid, holder FROM lease WHERE id = 1").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row and row[1] else None


def wait_for_engine(state: Path, timeout: float = DEADLINE) -> int:
    """The pid of the engine driving `state`, once one does."""
    return until(f"an engine to drive {state}", lambda: (pid := engine_pid(state)) and running(pid) and pid, timeout)


def stop_engines(folder: Path, timeout: float = 15) -> None:
    for state in folder.rglob("*.sqlite"):
        for pid in [*standby_pids(state), engine_pid(state)]:  # standbys first: they would take over
            if pid and pid != os.getpid() and running(pid):
                _stop(pid, timeout)


def _stop(pid: int, timeout: float) -> None:
    # A second SIGTERM stops an engine that is finishing a rollback first; SIGKILL one that hangs.
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        with contextlib.suppress(NeverHappened):
            until(f"engine pid {pid} to stop", lambda: not running(pid), wait)
            return


def terminate(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Stop an engine process this test started as its own would be stopped (SIGTERM), killed if it will not."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
