"""Who owns a pending action: real processes, real signals, one SQLite file opened twice."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import replace

from warroom.engine.ownership import Owner, may_adopt, process_started
from warroom.store import Store


def test_an_owner_counts_as_gone_only_when_that_is_provable():
    child = subprocess.Popen(["sleep", "30"])
    try:
        alive = Owner(socket.gethostname(), child.pid, process_started(child.pid))
        assert alive.started is not None and not alive.provably_gone()
        # The same pid with another start time is another process: the owner is gone (pid reuse).
        assert replace(alive, started=alive.started - 1).provably_gone()
        # Another host cannot be looked into: only its heartbeat can expire.
        elsewhere = replace(alive, host="standby-host")
        assert not elsewhere.provably_gone()
        assert not may_adopt(elsewhere, time.time() + 30, time.time())
        assert may_adopt(elsewhere, time.time() - 1, time.time())
    finally:
        child.kill()
        child.wait()
    assert alive.provably_gone() and may_adopt(alive, time.time() + 30, time.time())
    assert may_adopt(None, None, time.time())  # an action from before owners were recorded


def test_an_engine_of_this_process_is_gone_once_retired():
    owner = Owner.this_process()
    assert not owner.provably_gone()
    assert Owner.from_json(owner.to_json()) == owner
    owner.retire()
    assert owner.provably_gone()


def test_only_one_process_takes_an_orphaned_action_over(tmp_path):
    first, second = Store(tmp_path / "s.sqlite"), Store(tmp_path / "s.sqlite")
    first.commit(1.0, [], action_id="a1", new_action=("rollback", {}), owner=("dead", 0.0))
    assert first.adopt_action("a1", "dead", "one", time.time() + 30)
    assert not second.adopt_action("a1", "dead", "two", time.time() + 30)
    assert [a["owner"] for a in second.pending_actions()] == ["one"]
