"""`journal` and `report` are readers: a state on a read-only file system opens (issue 21, item 17), and a
PostgreSQL state named without a plan is found by its rollout (item 20). Real processes, a real tmpfs
mounted read-only (these machines run the tests as root), the real cluster."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_PASSWORD
from tests.races.conftest import WARROOM, Rollout, finished, flags, plan_data  # noqa: F401  (flags: the flag service fixture)
from tests.support.helpers import require_binary
from warroom.engine.lease import this_process
from warroom.store import open_store

pytestmark = pytest.mark.slow


def warroom(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return finished(subprocess.run([*WARROOM, *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                                   env={**os.environ, **(env or {})}))


@pytest.fixture
def readonly_folder(tmp_path) -> Iterator[tuple[Path, Callable[[], None]]]:
    """A tmpfs of the test's own; `freeze()` remounts it read-only, as a backup or a snapshot is mounted."""
    mount = require_binary("mount")
    folder = tmp_path / "backup"
    folder.mkdir()
    made = subprocess.run([mount, "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(folder)], capture_output=True, text=True)
    if made.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs (the tests run as root in CI): {made.stderr}")
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")

    def freeze() -> None:
        subprocess.run([mount, "-o", "remount,ro", str(folder)], check=True, capture_output=True)
        with pytest.raises(OSError):
            (folder / "probe").write_text("x")  # read-only indeed

    yield folder, freeze
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def a_journal(folder: Path, flags) -> Rollout:  # noqa: F811
    """A short headless run: a journal with a step up in it, its engine gone (the file closed cleanly)."""
    rollout = Rollout(folder, plan_data(flags, rollout={"name": "backup", "environment": "drill"}))
    run = rollout.verb("run", "--headless", "--speed", "max", "--for", "10s")
    assert run.returncode == 0, run.stdout + run.stderr
    return rollout


def test_journal_and_report_read_a_state_on_a_read_only_file_system(readonly_folder, flags):  # noqa: F811
    folder, freeze = readonly_folder
    rollout = a_journal(folder, flags)
    assert not rollout.state.with_name("state.sqlite-wal").exists()  # closed cleanly: no shared-memory file to read by
    freeze()
    journal = warroom("journal", "--state", str(rollout.state), "--json")
    assert journal.returncode == 0, journal.stderr
    kinds = [json.loads(line)["kind"] for line in journal.stdout.splitlines()]
    assert "engine.start" in kinds and "step.outcome" in kinds
    report = warroom("report", str(rollout.plan))
    assert report.returncode == 0 and "backup" in report.stdout, report.stderr
    assert "cannot open the state database" not in journal.stderr + report.stderr


def test_a_copy_taken_while_the_engine_wrote_is_read_with_its_write_ahead_log(readonly_folder, flags, tmp_path):  # noqa: F811
    """A file-level backup of a live state: the database, its -wal (the newest commits) and -shm."""
    folder, freeze = readonly_folder
    live = a_journal(tmp_path / "live", flags)
    writer = sqlite3.connect(live.state, isolation_level=None)  # holds the log open, as a running engine does
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("INSERT INTO journal (ts, kind, message, actor) VALUES (1, 'note', 'written last, in the log only', 'test')")
    for suffix in ("", "-wal", "-shm"):
        shutil.copy(f"{live.state}{suffix}", folder / f"state.sqlite{suffix}")
    writer.close()
    freeze()
    journal = warroom("journal", "--state", str(folder / "state.sqlite"), "--limit", "1")
    assert journal.returncode == 0 and "written last, in the log only" in journal.stdout, journal.stdout + journal.stderr


def test_journal_and_report_find_a_postgresql_state_named_without_a_plan(pg_state, flags, tmp_path):  # noqa: F811
    rollout_name = f"launch-{uuid.uuid4().hex[:8]}"
    state = {"url": pg_state.url, "password": f"env:{PG_PASSWORD}", "rollout": rollout_name}
    rollout = Rollout(tmp_path, plan_data(flags, rollout={"name": "db-launch", "environment": "drill"}, state=state))
    run = rollout.verb("run", "--headless", "--speed", "max", "--for", "10s")
    assert run.returncode == 0, run.stdout + run.stderr
    libpq = {"PGPASSWORD": os.environ[PG_PASSWORD]}  # no plan to name the password: libpq's own way
    journal = warroom("journal", "--state", pg_state.url, "--rollout", rollout_name, "--json", env=libpq)
    assert journal.returncode == 0, journal.stderr
    assert "step.outcome" in [json.loads(line)["kind"] for line in journal.stdout.splitlines()]
    report = warroom("report", "--state", pg_state.url, "--rollout", rollout_name, env=libpq)
    assert report.returncode == 0 and "db-launch" in report.stdout, report.stderr
    missing = warroom("journal", "--state", pg_state.url, "--rollout", "never-ran", env=libpq)
    assert missing.returncode == 1 and "no rollout is recorded here yet" in missing.stderr and rollout_name in missing.stderr
    other = open_store(pg_state.keyed(f"other-{uuid.uuid4().hex[:8]}"))  # a second launch on the database
    other.acquire_lease(this_process(), 10)
    other.close()
    several = warroom("journal", "--state", pg_state.url, env=libpq)  # which one? it names them and asks
    assert several.returncode == 1 and "name one with --rollout NAME" in several.stderr and rollout_name in several.stderr
    assert "Traceback" not in several.stderr
