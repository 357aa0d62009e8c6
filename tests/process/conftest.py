"""The engine as the process it is: `warroom up`, `engine`, `down`, consoles in tmux, verbs from shells.

Everything is real: `warroom` processes, one SQLite state file, the loopback flag service
(which records which pid wrote what), signals, tmux.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.races.conftest import WARROOM, Rollout, flags, plan_data  # noqa: F401  (flags: the flag service fixture)


class Engine(Rollout):
    """A rollout whose engine the test starts and watches as a process."""

    @property
    def log(self) -> Path:
        return self.state.with_name("state.engine.log")

    def up(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([*WARROOM, "up", str(self.plan), *args], capture_output=True, text=True, timeout=60,
                                stdin=subprocess.DEVNULL, env=env)
        assert result.returncode == 0 and "engine started: pid" in result.stdout, result.stdout + result.stderr
        return result

    def lease(self) -> dict[str, Any]:
        with sqlite3.connect(f"file:{self.state}?mode=ro", uri=True, timeout=5) as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM lease WHERE id = 1").fetchone()
        return dict(row) if row else {}

    def wait_for_kind(self, kind: str, count: int = 1) -> None:
        self.wait_for(kind, lambda: self.kinds().count(kind) >= count)

    def status_json(self) -> dict:
        result = self.verb("status", "--json")
        return json.loads(result.stdout)


@pytest.fixture
def rollout(tmp_path, flags):  # noqa: F811
    """make(**plan changes) → an Engine rollout in the test's folder, flags through the loopback service."""
    def make(**changes: Any) -> Engine:
        return Engine(tmp_path, plan_data(flags, **changes))

    return make
