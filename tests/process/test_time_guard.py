"""Time as a guard, on real engine processes: libfaketime (Debian `faketime`) puts the engine's
wall clock just before a calendar freeze ends, and SIGSTOP/SIGCONT make it miss a scheduled step."""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.engine.test_freeze_calendar import BLACK_FRIDAY
from tests.races.conftest import WARROOM, Rollout, plan_data
from tests.support.helpers import require_binary
from tests.support.waiting import until
from warroom.engine.schedule import MISSED_AFTER_POLLS

pytestmark = pytest.mark.slow

PHASES = [{"name": "Canary 5%", "flags": {"feature": 5}, "hold": "0s"},
          {"name": "Half 50%", "flags": {"feature": 50}, "hold": "1h"},
          {"name": "Full 100%", "flags": {"feature": 100}, "hold": "0s"}]


def journal(state: Path) -> list[tuple[float, str, dict]]:
    import json

    if not state.exists():
        return []
    with contextlib.closing(sqlite3.connect(state, timeout=15)) as db:
        try:
            return [(ts, kind, json.loads(data)) for ts, kind, data in db.execute("SELECT ts, kind, data FROM journal ORDER BY seq")]
        except sqlite3.OperationalError:
            return []


@contextlib.contextmanager
def engine(rollout: Rollout, *wrapper: str) -> Iterator[subprocess.Popen]:
    """`warroom engine PLAN` in the foreground, under `wrapper` (faketime) when given."""
    log_path = rollout.plan.parent / "engine.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([*wrapper, *WARROOM, "engine", str(rollout.plan)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        assert "Traceback" not in log_path.read_text()


def calendar(end: float) -> bytes:
    """Black Friday from 06:00 Berlin until `end` (UTC in the file)."""
    return BLACK_FRIDAY.replace(b"RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4FR\n", b"").replace(
        b"DTEND;TZID=Europe/Berlin:20261127T180000", f"DTEND:{dt.datetime.fromtimestamp(end, dt.UTC):%Y%m%dT%H%M%SZ}".encode())


def test_an_engine_under_faketime_holds_until_the_calendar_freeze_ends_then_steps(tmp_path, flags):
    faketime = require_binary("faketime")
    black_friday = dt.datetime(2026, 11, 27, 17, 0, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    offset = round(black_friday - time.time())  # the engine's wall clock: Black Friday, 17:00 in Berlin
    (tmp_path / "freezes.ics").write_bytes(calendar(black_friday + 3600))
    rollout = Rollout(tmp_path, plan_data(flags, phases=PHASES, guardrails=[], schedule={
        "zone": "Europe/Berlin", "freezes": {"calendar": "freezes.ics", "refresh": "1s"}}))
    with engine(rollout, faketime, "-f", f"{offset:+d}"):
        until("the engine is frozen by the calendar", lambda: any(k == "freeze.begin" for _, k, _ in journal(rollout.state)))
        # Now that it is frozen (however long it took to start): the freeze ends 2 s from now on the engine's clock.
        end = float(int(time.time() + offset) + 3)  # a whole second, as the calendar file writes it
        (tmp_path / "freezes.ics").write_bytes(calendar(end))
        entries = until("the engine steps up after the freeze", lambda: [e for e in journal(rollout.state) if e[1] == "step.outcome"])
    kinds = [kind for _, kind, _ in journal(rollout.state)]
    assert kinds.index("freeze.begin") < kinds.index("freeze.end") < kinds.index("step.outcome")
    assert entries[0][0] >= end  # stepped up on the engine's (fake) clock only once the freeze had ended
    assert dt.datetime.fromtimestamp(entries[0][0], dt.UTC).date() == dt.date(2026, 11, 27)


def test_a_scheduled_step_missed_while_the_engine_was_stopped_is_skipped_and_journaled(tmp_path, flags):
    poll = 1.0
    fire = time.time() + 12  # room for a slow start on a busy machine: the engine must tick once before its fire
    rollout = Rollout(tmp_path, plan_data(flags, phases=PHASES, guardrails=[], automation={"step_up": "manual"},
                                          schedule={"at": dt.datetime.fromtimestamp(fire, dt.UTC).isoformat(), "missed": "skip"}))
    with engine(rollout) as proc:
        until("the engine ticks", lambda: any(k == "engine.start" for _, k, _ in journal(rollout.state)))
        if time.time() >= fire - poll:
            pytest.fail("the engine took too long to start for this test's schedule (the machine is very busy)")
        proc.send_signal(signal.SIGSTOP)  # frozen over its fire: a host suspended, a debugger attached
        # Stopped long enough that its fire is later than a live engine would ever see it (the engine's own constant).
        while time.time() < fire + (MISSED_AFTER_POLLS + 1) * poll:
            time.sleep(0.1)
        proc.send_signal(signal.SIGCONT)
        missed = until("the missed fire is journaled", lambda: [d for _, k, d in journal(rollout.state) if k == "schedule.missed"])
        assert missed[0]["ran"] is False and missed[0]["phase"] == 1
    assert not [k for _, k, _ in journal(rollout.state) if k in ("schedule.fired", "step.intent")]
