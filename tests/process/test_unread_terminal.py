"""An engine whose terminal nobody reads keeps guarding (issue 21, item 15).

`warroom engine` in a tmux pane whose client is suspended, or behind a stalled SSH session,
writes into a terminal that takes nothing more: a write to it blocks. Here the terminal is a
real pseudo-terminal whose master nobody reads, filled up before the launch begins; the
engine must still step, judge a breach and roll back, and take a queued rollback.
"""

from __future__ import annotations

import os
import pty
import subprocess
import tty

import pytest

from tests.process.conftest import WARROOM
from tests.support.engines import terminate, wait_for_engine
from tests.support.waiting import until

pytestmark = pytest.mark.slow


def fill(slave: int) -> int:
    """Write into the terminal until it takes no more (nobody reads its master); how many bytes."""
    own = os.open(os.ttyname(slave), os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY)  # its own open file: the engine's stays blocking
    written = 0
    try:
        while True:
            try:
                written += os.write(own, b"x" * 1024)
            except BlockingIOError:
                return written
    finally:
        os.close(own)


@pytest.mark.parametrize("rolled_back_by", ["a 90% error-rate breach", "a queued rollback"])
def test_an_engine_whose_terminal_is_not_read_still_turns_the_flags_off(rollout, flags, rolled_back_by):
    breach = rolled_back_by.startswith("a 90%")
    faults = [{"metric": "error_rate", "phase": 1, "after": "1s", "value": 0.9}] if breach else []
    r = rollout(automation={"step_up": "manual"}, faults=faults)
    master, slave = pty.openpty()
    tty.setraw(slave)
    engine = subprocess.Popen([*WARROOM, "engine", str(r.plan)], stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
    try:
        wait_for_engine(r.state)
        assert fill(slave) > 0  # from here on a blocking write to this terminal never returns
        step = r.verb("step")  # the engine writes lines as it steps: they must not stop it
        assert step.returncode == 0, step.stdout + step.stderr
        if not breach:
            rollback = r.verb("rollback")
            assert rollback.returncode == 0 and rollback.stdout.strip() == "rolled back", rollback.stdout + rollback.stderr
        until("the flag turned off", lambda: flags.flags["feature"]["enabled"] is False)
        status = r.verb("status")
        assert status.returncode == 5 and "NO ENGINE" not in status.stdout, status.stdout  # its heartbeat went on
        assert "rollback.outcome" in r.kinds()
        assert "rollback.outcome" in r.log.read_text()  # its log file is written whatever the terminal does
    finally:
        terminate(engine)
        os.close(master)
        os.close(slave)
    assert engine.returncode == 0  # it stops cleanly too, its terminal still unread


def test_lines_for_a_terminal_that_takes_nothing_are_dropped_counted_and_the_count_said_once_it_reads_again():
    from warroom.engine.output import Output

    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    with os.fdopen(write, "w") as terminal:
        while True:  # a pipe nobody reads, full: a blocking write to it never returns
            try:
                os.write(write, b"x" * 4096)
            except BlockingIOError:
                break
        os.set_blocking(write, True)
        output = Output(None, terminal, backlog=10)
        for n in range(500):
            output.line(f"line {n}")  # never waits: what does not fit is counted
        drained = b""
        while b"line 499" not in drained:  # the reader comes back
            try:
                drained += os.read(read, 65536)
            except BlockingIOError:
                output.line("line 499")
        output.close()
    text = drained.decode()
    said = [line for line in text.splitlines() if "dropped here: this output was not read" in line]
    assert said, text[-2000:]
    dropped = int(said[0].split(" line(s) dropped")[0].rsplit(" ", 1)[1])
    assert dropped >= 500 - 10 - 1  # all but what the queue held and the one line being written
    os.close(read)
