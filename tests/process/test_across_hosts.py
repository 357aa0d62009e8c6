"""A war room across hosts (issue 14): engines and clients on one PostgreSQL database, each
process with a host of its own (WARROOM_HOSTNAME, USER), the driver killed or frozen and the
standby taking over. Real processes and signals, the real cluster, the loopback flag service
(which records the pid of every write)."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import PG_PASSWORD
from tests.process.conftest import WARROOM, Engine
from tests.races.conftest import plan_data
from tests.support.waiting import DEADLINE, until
from warroom.plan.state import PostgresState
from warroom.store import open_store
from warroom.store.base import Store, StoreMissing

pytestmark = pytest.mark.slow
TTL = "2s"
EU = {"WARROOM_HOSTNAME": "bastion-eu"}
US = {"WARROOM_HOSTNAME": "bastion-us"}
ME = pwd.getpwuid(os.getuid()).pw_name  # every engine and verb is named by its uid's account (LOGNAME names nobody)


class SharedRollout(Engine):
    """A rollout whose state is its rows in the test database; looked at through the store."""

    def __init__(self, folder: Path, data: dict, state: PostgresState):
        super().__init__(folder, {**data, "state": {"url": state.url, "password": f"env:{PG_PASSWORD}", "rollout": state.rollout}})
        self.ref = state
        self._store: Store | None = None
        self.started: list[subprocess.Popen] = []

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.ref, create=False)
        return self._store

    def kinds(self) -> list[str]:
        try:
            return [e.kind for e in self.store.entries()]
        except StoreMissing:
            return []

    def driver(self) -> int | None:
        try:
            lease = self.store.lease()
        except StoreMissing:
            return None
        return lease.holder.pid if lease is not None and lease.holder is not None else None

    def standbys(self) -> list[int]:
        return [s.holder.pid for s in self.store.standbys()]

    def engine(self, host: dict[str, str], *args: str) -> subprocess.Popen:
        with open(self.plan.parent / f"engine-{host['WARROOM_HOSTNAME']}.out", "a") as log:  # the child has its own copy
            return subprocess.Popen([*WARROOM, "engine", str(self.plan), "--lease-ttl", TTL, *args], stdout=log, stderr=subprocess.STDOUT,
                                    text=True, stdin=subprocess.DEVNULL, env={**os.environ, **host})

    def pair(self) -> tuple[subprocess.Popen, subprocess.Popen]:
        """The eu engine driving, then the us engine standing by."""
        eu = self.engine(EU)
        self.started.append(eu)
        until("the eu engine to drive", lambda: self.driver() == eu.pid)
        us = self.engine(US)
        self.started.append(us)
        until("the us engine to stand by", lambda: us.pid in self.standbys())
        return eu, us

    def output(self, host: dict[str, str]) -> str:
        return (self.plan.parent / f"engine-{host['WARROOM_HOSTNAME']}.out").read_text()


@pytest.fixture
def shared(tmp_path, flags, pg_state, monkeypatch):
    """make(**plan changes) → a rollout on PostgreSQL; its engines are stopped after the test."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))  # each "host" logs in the test's folder
    made: list[tuple[SharedRollout, list[subprocess.Popen]]] = []

    def make(**changes: Any) -> SharedRollout:
        rollout = SharedRollout(tmp_path, plan_data(flags, **changes), pg_state.keyed(f"race-{uuid.uuid4().hex[:8]}"))
        made.append(rollout)
        return rollout

    yield make
    for rollout in made:
        for proc in rollout.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()
        if rollout._store is not None:
            rollout._store.close()


def test_the_standby_on_another_host_finishes_a_rollback_when_the_driver_is_killed(shared, flags, tmp_path):
    ran = tmp_path / "runbook-ran"
    r = shared(automation={"step_up": "manual"},
               rollback={"flags": {"feature": False}, "dry_run": False, "steps": [{"run": ["sh", "-c", f"echo ran >> {ran}"]}]})
    eu, us = r.pair()
    status = r.verb("status")
    assert f"engine: {ME}@bastion-eu pid {eu.pid} (driving) · {ME}@bastion-us pid {us.pid} (standby)" in status.stdout, status.stdout
    assert r.verb("step").returncode == 0
    flags.fail(503)  # the rollback keeps retrying on the eu engine …
    rollback = subprocess.Popen([*WARROOM, "rollback", str(r.plan)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)
    until("the eu engine's rollback attempts", lambda: r.kinds().count("rollback.attempt") >= 2)
    eu.send_signal(signal.SIGKILL)  # … when its host dies
    killed_at = time.time()
    eu.wait()
    until("the us engine to take over", lambda: r.driver() == us.pid)
    flags.recover()
    out, err = rollback.communicate(timeout=60)
    assert rollback.returncode == 0 and out.strip() == "rolled back", out + err
    assert flags.flags["feature"]["enabled"] is False
    kinds = r.kinds()
    assert kinds.count("engine.lost") == 1 and kinds.count("rollback.resume") == 1 and kinds.count("rollback.outcome") == 1
    assert ran.read_text() == "ran\n"  # the runbook ran once, on the engine that finished
    assert {w.who for w in flags.writes} == {eu.pid, us.pid}
    assert {w.who for w in flags.writes if w.received > killed_at} == {us.pid}
    entries = r.store.entries()
    assert len({e.seq for e in entries}) == len(entries)  # nothing doubled
    lost = next(e for e in entries if e.kind == "engine.lost")
    assert f"took over from engine {ME}@bastion-eu pid {eu.pid}, which vanished" in lost.message
    assert r.status_json()["state"] == "ROLLED_BACK"


def test_a_frozen_driver_taken_over_by_another_host_writes_nothing_when_it_wakes(shared, flags):
    r = shared(automation={"step_up": "manual"})
    eu, us = r.pair()
    assert r.verb("step").returncode == 0
    eu.send_signal(signal.SIGSTOP)  # a VM pause: the eu engine holds its lease and says nothing
    frozen_at = time.time()
    until("the us engine to take over", lambda: r.driver() == us.pid)
    assert r.store.lease().epoch == 2
    step = r.verb("step")  # the new driver steps up
    assert step.returncode == 0 and step.stdout.strip() == "stepped up to phase 2", step.stdout + step.stderr
    writes, journal = len(flags.writes), r.store.entries()
    eu.send_signal(signal.SIGCONT)  # it wakes believing it drives
    assert eu.wait(DEADLINE) == 10
    assert f"FENCED: fenced: this engine held epoch 1; the lease is now epoch 2, held by {ME}@bastion-us" in r.output(EU)
    # It has exited: no flag write from it … (one it sent before dying but the service read
    # after would have no pid to show: none but the driver's counts)
    assert [w for w in flags.writes[writes:] if w.who != us.pid] == []
    assert r.store.entries()[:len(journal)] == journal  # … no journal entry
    after = [e for e in r.store.entries() if e.ts > frozen_at and f"pid {eu.pid}" in str(e.data.get("holder", ""))]
    assert after == []
    assert r.store.load_state()[1]["phase"] == 2 and flags.flags["feature"]["rollout_percentage"] == 50  # … no state


def test_a_console_on_another_host_sees_the_driver_the_standby_and_a_step(shared, tmux):
    r = shared(automation={"step_up": "manual"})
    r.pair()
    tmux.start(f"{' '.join(WARROOM)} {r.plan}", env={"WARROOM_HOSTNAME": "laptop-ic",
                                                    "XDG_STATE_HOME": os.environ["XDG_STATE_HOME"]})
    screen = tmux.wait_for(f"engine: {ME}@bastion-eu (driving) · {ME}@bastion-us (standby)")
    assert "PENDING" in screen and "RUNNING" not in screen, screen
    assert r.verb("step").returncode == 0  # from this host, through the database: the console there follows
    tmux.wait_for("RUNNING")


def test_engines_and_clients_carry_on_when_the_database_cuts_every_connection(shared, flags, pg_state):
    """What a database restart looks like from warroom's side (the shared cluster itself is not
    restarted: other tests use it): every connection dropped at once, mid-launch."""
    r = shared(automation={"step_up": "manual"})
    eu, us = r.pair()
    assert r.verb("step").returncode == 0
    with psycopg.connect(pg_state.url, password=os.environ[PG_PASSWORD], autocommit=True) as raw:
        cut = raw.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND pid != pg_backend_pid()").fetchone()[0]
    assert cut >= 4  # each engine's store and listener at least
    rollback = r.verb("rollback", "--reason", "after the cut")
    assert rollback.returncode == 0 and rollback.stdout.strip() == "rolled back", rollback.stdout + rollback.stderr
    assert flags.flags["feature"]["enabled"] is False and r.driver() == eu.pid and us.pid in r.standbys()
    kinds = r.kinds()
    assert kinds.count("step.outcome") == 1 and kinds.count("rollback.outcome") == 1 and "engine.lost" not in kinds
    assert eu.poll() is None and us.poll() is None and "Traceback" not in r.output(EU) + r.output(US)


def test_up_on_another_host_starts_a_standby_there(shared):
    r = shared(automation={"step_up": "manual"})
    eu = r.engine(EU)
    r.started.append(eu)
    until("the eu engine to drive", lambda: r.driver() == eu.pid)
    env = {**os.environ, **US}
    first = subprocess.run([*WARROOM, "up", str(r.plan)], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert first.returncode == 0 and f"engine {ME}@bastion-eu pid {eu.pid} drives; started a standby here: pid " in first.stdout, first
    standby = int(first.stdout.split("standby here: pid ")[1].split()[0])
    try:  # the standby is detached (not our child): stopped below by its pid
        assert r.standbys() == [standby]
        again = subprocess.run([*WARROOM, "up", str(r.plan)], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
        assert again.returncode == 0 and f"stands by on this host already: {ME}@bastion-us pid {standby}" in again.stdout, again.stdout
        assert r.standbys() == [standby]  # one is enough
    finally:
        os.kill(standby, signal.SIGKILL)


def test_a_standby_outlives_its_database_being_away(shared, pg_state):
    """Longer than a read's one retry: the database refuses every connection for a few seconds."""
    r = shared(automation={"step_up": "manual"})
    eu, us = r.pair()
    base, name = pg_state.url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", password=os.environ[PG_PASSWORD], autocommit=True) as raw:  # from beside it
        raw.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
        try:
            raw.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            until("the standby to find the store away", lambda: "standby: cannot reach the store" in r.output(US))
        finally:
            raw.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
    until("the standby to reach the store again", lambda: "standby: the store answers again" in r.output(US))
    assert r.verb("step").returncode == 0  # whichever drives takes commands
    if r.driver() == us.pid:  # the outage outlasted eu's lease: us took over, and eu, back, finds itself fenced
        assert eu.wait(DEADLINE) == 10 and "FENCED" in r.output(EU)
    else:  # eu renewed first: nothing changed hands
        assert r.driver() == eu.pid and us.pid in r.standbys() and us.poll() is None


def test_a_rollback_asked_while_the_database_is_away_goes_out_once_it_answers(shared, pg_state):
    """A human's rollback is never lost to a store that cannot be reached for a moment: the verb
    says so on each try and sends it once the database answers again."""
    r = shared(automation={"step_up": "manual"})
    r.pair()
    assert r.verb("step").returncode == 0
    base, name = pg_state.url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", password=os.environ[PG_PASSWORD], autocommit=True) as raw:
        raw.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
        try:
            raw.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            said = r.plan.parent / "rollback.err"
            with said.open("w") as err_file:
                verb = subprocess.Popen([*WARROOM, "rollback", str(r.plan), "--reason", "p99 climbing"], stdout=subprocess.PIPE,
                                        stderr=err_file, text=True, stdin=subprocess.DEVNULL)
            until("the verb to find the store away", lambda: "rollback: not sent yet (try 1)" in said.read_text())
        finally:
            raw.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
    out, _ = verb.communicate(timeout=DEADLINE)
    err = said.read_text()
    assert verb.returncode == 0, out + err
    assert "rollback: not sent yet (try 1)" in err and "retrying until the store answers" in err, err
    assert PG_PASSWORD not in err and os.environ[PG_PASSWORD] not in err
    assert r.kinds().count("rollback.intent") == 1


def test_a_hosts_own_stop_stops_that_hosts_engine_only_and_down_stops_them_all(shared):
    """The README's systemd unit (`ExecStop=warroom down PLAN --here --force`) stopped on one host
    (issue 21, item 7): that host's engine stops, the other host's goes on or takes over; a plain
    `down` from anywhere stops every engine of the rollout and names each."""
    r = shared(automation={"step_up": "manual"})
    eu, us = r.pair()
    assert r.verb("step").returncode == 0

    def down(host: dict[str, str], *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*WARROOM, "down", str(r.plan), *args], capture_output=True, text=True, timeout=90,
                              env={**os.environ, **host}, stdin=subprocess.DEVNULL)

    on_us = down(US, "--here", "--force")  # the standby's host stops its unit
    assert on_us.returncode == 0 and f"engine {ME}@bastion-us pid {us.pid} stopped (it stood by)" in on_us.stdout, on_us
    assert f"engine {ME}@bastion-eu pid {eu.pid} drives from bastion-eu: not stopped" in on_us.stdout, on_us.stdout
    assert us.wait(30) == 0 and r.driver() == eu.pid and eu.poll() is None  # the launch is still guarded

    us = r.engine(US)
    r.started.append(us)
    until("the us engine to stand by again", lambda: us.pid in r.standbys())
    on_eu = down(EU, "--here")  # the driver's host: a standby elsewhere takes over, so nothing is left unguarded
    assert on_eu.returncode == 0 and f"engine {ME}@bastion-eu pid {eu.pid} stopped" in on_eu.stdout, on_eu
    assert eu.wait(30) == 0
    until("the us engine to take over", lambda: r.driver() == us.pid)
    assert "engine.left" not in r.kinds()

    ops = {"WARROOM_HOSTNAME": "bastion-ops"}
    assert down(ops, "--here").stdout.strip().endswith("no engine of this rollout runs on this host")
    eu = r.engine(EU)
    r.started.append(eu)
    until("the eu engine to stand by", lambda: eu.pid in r.standbys())
    everything = down(ops, "--force")  # from a third host: every engine of the rollout
    assert everything.returncode == 0, everything
    assert f"engine {ME}@bastion-us pid {us.pid} stopped" in everything.stdout, everything.stdout
    assert f"engine {ME}@bastion-eu pid {eu.pid} stopped (it stood by)" in everything.stdout, everything.stdout
    assert us.wait(30) == 0 and eu.wait(30) == 0 and r.driver() is None
