"""Races between real processes: a headless runner and CLI verbs started at the same instant.

Everything is real: `warroom` processes, one SQLite state file, and the loopback flag
service (tests/flags/flagservice.py), which can delay, drop or apply-late chosen writes
and records every write with the pid that sent it. These tests talk to warroom only
through its command line and its files, so they hold whatever the engine becomes.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.flags.flagservice import FlagService
from tests.support.waiting import until
from warroom.store import open_store
from warroom.store.base import StoreMissing

WARROOM = [sys.executable, "-m", "warroom"]
TOKEN = "RACE-TOKEN-3c1d9"
TOKEN_ENV = "WARROOM_RACE_FLAG_TOKEN"


@pytest.fixture
def flags(monkeypatch) -> Iterator[FlagService]:
    """The loopback flag service; the processes started by a test find its token in their environment."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    service = FlagService(TOKEN).start()
    yield service
    service.stop()


def exposing(percent: float) -> Callable[[str, Any], bool]:
    """A write-fault filter: writes that set a flag on at `percent`."""
    return lambda _name, body: isinstance(body, dict) and body.get("enabled") is True and body.get("rollout_percentage") == percent


def plan_data(service: FlagService, *, timeout: str = "1s", faults: list[dict] | None = None, **changes: Any) -> dict:
    """One flag, `feature`, 5 → 50 → 100 % through the http provider; a rollback guardrail acting at once."""
    data: dict[str, Any] = {
        "rollout": {"name": "race", "environment": "staging"},
        "sources": {"sim": {"type": "simulator", "seed": 1, "noise": 0, "flag": "feature", "faults": faults or []}},
        "flag_provider": {"provider": "http", "url": service.url, "token": f"env:{TOKEN_ENV}", "timeout": timeout},
        "state": "state.sqlite",
        "poll_interval": "1s",
        "automation": {"step_up": "auto"},
        "panes": [{"id": "errors", "title": "Error rate", "query": "error_rate", "unit": "ratio"}],
        "guardrails": [{"id": "errors", "pane": "errors", "above": 0.01, "for": "0s", "action": "rollback"}],
        "phases": [
            {"name": "Canary 5%", "flags": {"feature": 5}, "hold": "1s", "checklist": ["Dashboards checked"]},
            {"name": "Half 50%", "flags": {"feature": 50}, "hold": "1s"},
            {"name": "Full 100%", "flags": {"feature": 100}, "hold": "0s"},
        ],
        "rollback": {"flags": {"feature": False}, "steps": []},
    }
    data.update(changes)
    return data


class Rollout:
    """A plan in its own folder, with its state file next to it."""

    def __init__(self, folder: Path, data: dict):
        folder.mkdir(parents=True, exist_ok=True)
        self.plan = folder / "plan.yaml"
        self.plan.write_text(yaml.safe_dump(data, sort_keys=False))
        self.state = folder / "state.sqlite"

    def verb(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return finished(subprocess.run([*WARROOM, args[0], str(self.plan), *args[1:]], capture_output=True, text=True,
                                       timeout=timeout, stdin=subprocess.DEVNULL))

    def at_once(self, *commands: tuple[str, ...], offsets: tuple[float, ...] = (), timeout: float = 60) -> list[subprocess.CompletedProcess]:
        """Start verbs together (each `offsets[i]` seconds after the first) and wait for all of them."""
        procs = []
        started = time.monotonic()
        for i, command in enumerate(commands):
            wait = (offsets[i] if i < len(offsets) else 0.0) - (time.monotonic() - started)
            if wait > 0:
                time.sleep(wait)  # the scenario: a sweep across the race window, not a wait for anything
            procs.append(subprocess.Popen([*WARROOM, command[0], str(self.plan), *command[1:]], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL))
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            result = finished(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
            result.pid = proc.pid  # type: ignore[attr-defined]  # to match the flag service's record of who wrote
            results.append(result)
        return results

    def journal(self) -> list[dict]:
        """The journal as `warroom journal --json` prints it."""
        out = self.verb("journal", "--json").stdout
        return [json.loads(line) for line in out.splitlines()]

    def status(self) -> dict:
        return json.loads(self.verb("status", "--json").stdout)

    def kinds(self) -> list[str]:
        """A cheap look at the journal's kinds while waiting (no process start)."""
        if not self.state.exists():
            return []
        with contextlib.closing(sqlite3.connect(self.state, timeout=15)) as db:
            try:
                return [k for (k,) in db.execute("SELECT kind FROM journal ORDER BY seq")]
            except sqlite3.OperationalError:  # the file exists, its tables not yet
                return []

    def entries(self) -> list[dict]:
        """The journal's kinds and actions, read straight from the file (no process start), for by_action."""
        with contextlib.closing(sqlite3.connect(self.state, timeout=15)) as db:
            return [{"seq": seq, "kind": kind, "action_id": action_id}
                    for seq, kind, action_id in db.execute("SELECT seq, kind, action_id FROM journal ORDER BY seq")]

    def ticks(self) -> int:
        """How often the engine has ticked, by the snapshot it published last (no process start)."""
        try:
            with contextlib.closing(open_store(self.state, create=False)) as store:
                published = store.snapshot()
        except StoreMissing:
            return 0
        return published.body["tick"] if published else 0

    def wait_for(self, what: str, predicate: Callable[[], bool], runner: subprocess.Popen | None = None) -> None:
        def seen() -> bool:
            if runner is not None and runner.poll() is not None and not predicate():
                pytest.fail(f"the runner exited ({runner.returncode}) before {what}")
            return predicate()

        until(what, seen, every=0.1, show=lambda: f"journal: {self.kinds()}")

    @contextlib.contextmanager
    def runner(self, *args: str) -> Iterator[subprocess.Popen]:
        """`warroom run --headless PLAN` driving the rollout (real time unless args say otherwise)."""
        with open(self.plan.parent / "runner.log", "w") as log:  # the child has its own copy of the descriptor
            proc = subprocess.Popen([*WARROOM, "run", "--headless", str(self.plan), *args], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            assert "Traceback" not in (self.plan.parent / "runner.log").read_text()


def finished(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert "Traceback" not in result.stderr, result.stderr
    return result


def by_action(entries: list[dict], kind: str) -> dict[str, list[dict]]:
    """Journal entries of one kind, grouped by the action they belong to."""
    out: dict[str, list[dict]] = {}
    for e in entries:
        if e["kind"] == kind:
            out.setdefault(e["action_id"], []).append(e)
    return out
