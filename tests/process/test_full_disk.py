"""A full disk must not end automation (issue 12, item 6): samples are expendable, decisions are not;
and a person's rollback still reaches the engine, over its local socket (issue 21, item 14).

The state lives on a real, small tmpfs that the test fills up while the engine runs; the
flag service is on the network, so the rollback the engine decides can still land.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import time

import pytest

from tests.process.conftest import WARROOM, Engine
from tests.races.conftest import plan_data
from tests.support.engines import terminate, wait_for_engine
from tests.support.helpers import missing, require_binary
from tests.support.waiting import DEADLINE, holds, until
from warroom.client import ALIVE_FLOOR
from warroom.engine.lease import HEARTBEAT

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB filesystem of its own (tmpfs; needs root, as CI has). One that cannot be mounted
    fails the test in CI: a full disk is never proven by a skip."""
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run([require_binary("mount"), "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        missing(f"cannot mount a small tmpfs for the full-disk test (it needs root): {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(folder) -> None:
    try:
        with open(folder / "filler", "wb") as out:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
    except OSError as exc:  # ENOSPC: the disk is full now (the engine's own writes may have filled it first)
        if exc.errno != errno.ENOSPC:
            raise


def test_a_full_disk_keeps_guarding_says_so_loudly_and_writes_it_all_down_once_there_is_room(small_disk, flags):
    plan = plan_data(flags, faults=[{"metric": "error_rate", "phase": 1, "after": "6s", "value": 0.05}])
    rollout = Engine(small_disk, plan)
    engine = subprocess.Popen([*WARROOM, "engine", str(rollout.plan)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, stdin=subprocess.DEVNULL)
    try:
        wait_for_engine(rollout.state)
        until("phase 1", lambda: "step.outcome" in rollout.kinds())
        fill(small_disk)  # from here on not one more page of the journal can be written
        # The error rate breaks 6 s into phase 1: the engine rolls back from memory.
        until("the flag turned off", lambda: flags.flags.get("feature", {}).get("enabled") is False)
        assert engine.poll() is None  # still guarding
        journal_before = rollout.kinds()
        assert "rollback.intent" not in journal_before  # the decision could not be written …
        # Its lease renewals fail on the full disk too: two of them go by, and it still guards.
        holds("the engine to keep running on a full disk", lambda: engine.poll() is None, 2 * HEARTBEAT)
        (small_disk / "filler").unlink()  # room again
        until("the held decisions in the journal", lambda: "journal.recovered" in rollout.kinds())
    finally:
        engine.send_signal(signal.SIGTERM)
        out, _ = engine.communicate(timeout=DEADLINE)
    assert "THE JOURNAL CANNOT BE WRITTEN" in out and "Guarding from memory" in out, out  # said loudly
    kinds = rollout.kinds()
    # … and every decision is in it now, in order, with when it was taken.
    start = kinds.index("journal.unwritable")
    assert kinds.index("rollback.intent") > start and kinds.index("rollback.confirmed") > kinds.index("rollback.intent")
    assert kinds.index("journal.recovered") > kinds.index("rollback.outcome")
    entries = rollout.journal()
    intent = next(e for e in entries if e["kind"] == "rollback.intent")
    recovered = next(e for e in entries if e["kind"] == "journal.recovered")
    assert intent["ts"] < recovered["ts"] - 1  # journaled at the time it was decided, not when written
    status = rollout.status()
    assert status["state"] == "ROLLED_BACK" and flags.flags["feature"]["enabled"] is False


def heartbeat_age(rollout: Engine) -> float:
    return time.time() - rollout.lease()["heartbeat"]


def fill_until_the_heartbeat_stops(rollout: Engine) -> None:
    """The state's disk full: the engine guards from memory and renews no heartbeat, so every
    client's test of life (a heartbeat younger than ALIVE_FLOOR) fails from here on."""
    fill(rollout.state.parent)
    until("the heartbeat to go stale", lambda: heartbeat_age(rollout) > ALIVE_FLOOR + 1, 30)


@pytest.fixture
def full_disk_launch(small_disk, flags):
    """An engine at phase 1 (5 % exposed) on a small disk of its own. Yields (rollout, engine process)."""
    rollout = Engine(small_disk, plan_data(flags, automation={"step_up": "manual"}))
    engine = subprocess.Popen([*WARROOM, "engine", str(rollout.plan)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL)
    try:
        wait_for_engine(rollout.state)
        assert rollout.verb("step").returncode == 0
        yield rollout, engine
    finally:
        terminate(engine)


def test_rollback_reaches_an_engine_whose_disk_is_full_over_its_local_socket(full_disk_launch, flags, small_disk):
    rollout, engine = full_disk_launch
    fill_until_the_heartbeat_stops(rollout)
    status = rollout.verb("status")
    assert status.returncode == 0 and "NO ENGINE" not in status.stdout, status.stdout  # it guards: it says so on its socket
    assert "answers on this host's local socket, but cannot renew its heartbeat" in status.stdout, status.stdout
    verb = subprocess.Popen([*WARROOM, "rollback", str(rollout.plan), "--reason", "disk full, p99 climbing"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    out, err = verb.communicate(timeout=60)
    assert verb.returncode == 0 and out.strip() == "rolled back", out + err
    assert "the store cannot take it" in err and "sent to the engine over this host's local socket" in err, err
    assert flags.flags["feature"]["enabled"] is False and engine.poll() is None
    (small_disk / "filler").unlink()  # room again: what the engine held is written down
    until("the held entries in the journal", lambda: "journal.recovered" in rollout.kinds(), 30)
    asked = next(e for e in rollout.journal() if e["kind"] == "command.local")
    peer = asked["data"]["peer"]  # who asked, as the kernel says: the verb's own process
    assert peer["uid"] == os.getuid() and peer["pid"] == verb.pid, asked
    assert asked["data"]["verb"] == "rollback" and "disk full, p99 climbing" in json.dumps(asked["data"])
    assert rollout.kinds().count("rollback.outcome") == 1


def test_R_in_a_console_rolls_back_an_engine_whose_disk_is_full(full_disk_launch, flags, tmux):
    rollout, engine = full_disk_launch
    tmux.start(f"{' '.join(WARROOM)} {rollout.plan}")
    tmux.wait_for("RUNNING", 30)
    fill_until_the_heartbeat_stops(rollout)
    # The console has looked since the heartbeat went stale once it shows its data that old.
    until("the console to show stale data", lambda: any(int(age) >= 5 for age in re.findall(r"data (\d+)s ago", tmux.screen())))
    assert "NO ENGINE" not in tmux.screen(), tmux.screen()  # it still guards: the console knows it from its socket
    tmux.run("send-keys", "-t", tmux.name, "R")
    until("the flag turned off", lambda: flags.flags["feature"]["enabled"] is False, 30)
    assert engine.poll() is None
