"""Engine processes as tests see them: find the one driving a state file, wait for it, stop it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.support.terminal import running


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


def wait_for_engine(state: Path, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = engine_pid(state)
        if pid and running(pid):
            return pid
        time.sleep(0.05)
    raise AssertionError(f"no engine drives {state} after {timeout}s")


def stop_engines(folder: Path, timeout: float = 15) -> None:
    for state in folder.rglob("*.sqlite"):
        for pid in [*standby_pids(state), engine_pid(state)]:  # standbys first: they would take over
            if pid and pid != os.getpid() and running(pid):
                _stop(pid, timeout)


def _stop(pid: int, timeout: float) -> None:
    try:
        # A second SIGTERM stops an engine that is finishing a rollback first.
        for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while running(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not running(pid):
                break
    except ProcessLookupError:
        pass


def terminate(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Stop an engine process this test started as its own would be stopped (SIGTERM), killed if it will not."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
