"""Verbs never hang on a frozen engine (issue 21, item 13).

The driving engine is stopped with SIGSTOP (a VM pause, a stuck host) and a standby waits on
the same state. The frozen engine still holds its wake-up socket, and nobody drains it: once
its queue is full a blocking wake-up would hang every client that sends a command. Real
processes, real signals, the real abstract unix socket.
"""

from __future__ import annotations

import signal
import socket
import subprocess

import pytest

from tests.process.conftest import WARROOM
from tests.support.engines import engine_pid, standby_pids, wait_for_engine
from tests.support.waiting import until
from warroom.store.sqlite import wake_address

pytestmark = pytest.mark.slow


def fill_wake_queue(state) -> int:
    """Send the frozen engine's wake-up socket datagrams until its queue takes no more; how many."""
    sent = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        while True:
            try:
                sock.sendto(b"!", wake_address(state))
            except BlockingIOError:
                return sent
            sent += 1


def test_verbs_return_while_the_driver_is_frozen_with_its_wake_up_queue_full(rollout, flags):
    r = rollout(automation={"step_up": "manual"})
    engine = [*WARROOM, "engine", str(r.plan), "--lease-ttl", "2s"]
    driver = subprocess.Popen(engine, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    standby = None
    verbs: list[subprocess.Popen] = []
    try:
        assert wait_for_engine(r.state) == driver.pid
        assert r.verb("step").returncode == 0
        standby = subprocess.Popen(engine, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        until("the standby to register", lambda: standby.pid in standby_pids(r.state))
        driver.send_signal(signal.SIGSTOP)
        assert fill_wake_queue(r.state) > 0  # nobody reads it any more
        for verb in (("pause",), ("tick", "1"), ("status",), ("rollback",)):
            verbs.append(subprocess.Popen([*WARROOM, verb[0], str(r.plan), *verb[1:]], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL))
        outcomes = {}
        for proc in verbs:
            out, err = proc.communicate(timeout=60)  # a verb blocked on the wake-up never returns
            outcomes[proc.args[3]] = (proc.returncode, out, err)
        until("the standby to take over", lambda: engine_pid(r.state) == standby.pid)
        code, out, err = outcomes["rollback"]
        assert code == 0 and out.strip().endswith("rolled back"), out + err  # run by the standby
        assert flags.flags["feature"]["enabled"] is False
    finally:
        for proc in (driver, standby, *verbs):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()
