"""Verbs and engines through a PostgreSQL restart (issue 21, item 4): a private cluster the test
restarts (tests/races/private_postgres.py), the engine and the waiting verb its clients."""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.conftest import PG_PASSWORD
from tests.process.conftest import WARROOM
from tests.process.test_across_hosts import EU, SharedRollout
from tests.races.conftest import plan_data
from tests.races.private_postgres import PrivateCluster, private_postgres  # noqa: F401  (the fixture)
from tests.support.servers import STORE_PASSWORD
from tests.support.waiting import until
from warroom.plan.state import PostgresState

pytestmark = pytest.mark.slow


def test_a_rollback_waits_through_a_database_restart_and_exits_0_once_done(tmp_path, flags, private_postgres, monkeypatch):  # noqa: F811  (the fixture imported above)
    cluster: PrivateCluster = private_postgres
    monkeypatch.setenv(PG_PASSWORD, STORE_PASSWORD)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    state = PostgresState(url=cluster.url("launch"), password=f"env:{PG_PASSWORD}", rollout="restarted")
    r = SharedRollout(tmp_path, plan_data(flags, automation={"step_up": "manual"}), state)
    try:
        eu = r.engine(EU)
        r.started.append(eu)
        until("the engine to drive", lambda: r.driver() == eu.pid)
        assert r.verb("step").returncode == 0
        flags.fail(503)  # the rollback keeps retrying its flag while the database goes away
        stderr = tmp_path / "rollback.err"
        with open(stderr, "w") as err:
            rollback = subprocess.Popen([*WARROOM, "rollback", str(r.plan)], stdout=subprocess.PIPE, stderr=err, text=True,
                                        stdin=subprocess.DEVNULL)
        until("the engine's first rollback attempt", lambda: "rollback.attempt" in r.kinds())
        cluster.stop()
        until("the verb to find its store away", lambda: rollback.poll() is not None or "cannot be reached" in stderr.read_text())
        cluster.start()
        flags.recover()
        out, _ = rollback.communicate(timeout=90)
        said = stderr.read_text()
        assert rollback.returncode == 0 and out.strip() == "rolled back", out + said
        assert "rollback: sent; the store cannot be reached to follow it (try 1)" in said and STORE_PASSWORD not in said, said
        assert flags.flags["feature"]["enabled"] is False
        # The journal's entries held through the outage are written on its next try, which can come after the outcome.
        until("the rollback's outcome in the journal", lambda: "rollback.outcome" in r.kinds())
        assert eu.poll() is None  # the engine went on through the restart
    finally:
        for proc in r.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        if r._store is not None:
            r._store.close()
