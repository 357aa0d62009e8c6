"""`warroom check` prints the plan's timeline in clock times against the freeze calendar, and
refuses a plan whose step cannot begin before its deadline (a launch day inside a freeze)."""

from __future__ import annotations

from tests.conftest import write_plan
from tests.engine.test_freeze_calendar import BLACK_FRIDAY
from tests.engine.test_freezes import QUICK
from warroom.cli.main import main
from warroom.core.exit_codes import Exit


def phases(*holds: str) -> list[dict]:
    return [{**p, "hold": h} for p, h in zip(QUICK["phases"], holds, strict=True)]


def test_check_moves_a_launch_out_of_the_freeze_and_refuses_a_deadline_inside_it(tmp_path, capsys):
    (tmp_path / "freezes.ics").write_bytes(BLACK_FRIDAY)
    schedule = {"zone": "Europe/Berlin", "at": "2026-11-27T10:00:00+01:00", "freezes": {"calendar": "freezes.ics", "horizon": "366d"}}
    plan = write_plan(tmp_path, {"phases": phases("1h", "1h", "0s"), "schedule": schedule})
    assert main(["check", str(plan)]) == 0
    out = capsys.readouterr().out
    assert "freeze calendar: " in out and "Fri 27 Nov 2026 06:00 CET until 18:00: Black Friday" in out
    assert "1/3 Canary 5%" in out and "Fri 27 Nov 2026 18:00 CET → Fri 27 Nov 2026 19:00 CET" in out
    assert "moved by calendar freeze 'Black Friday' until 18:00" in out
    write_plan(tmp_path, {"phases": phases("1h", "1h", "0s"), "schedule": {**schedule, "deadline": "2026-11-27T17:00:00+01:00"}})
    assert main(["check", str(plan)]) == Exit.CHECK
    out = capsys.readouterr().out
    assert ("FAIL schedule.deadline 2026-11-27T17:00:00+01:00: phase 1 Canary 5% cannot begin before it (moved by calendar "
            "freeze 'Black Friday' until 18:00)") in out


def test_check_timeline_crosses_the_daylight_saving_change_in_berlin(tmp_path, capsys):
    schedule = {"zone": "Europe/Berlin", "at": "2027-03-27T20:00:00+01:00"}
    plan = write_plan(tmp_path, {"phases": phases("12h", "1h", "0s"), "schedule": schedule})
    assert main(["check", str(plan)]) == 0
    out = capsys.readouterr().out
    # 20:00 CET + 12 h is 09:00 CEST: the clocks went forward at 02:00.
    assert "Sat 27 Mar 2027 20:00 CET → Sun 28 Mar 2027 09:00 CEST" in out
    assert "2/3 Half 50%" in out and "Sun 28 Mar 2027 09:00 CEST → Sun 28 Mar 2027 10:00 CEST" in out


def test_check_names_an_unknown_zone_and_a_time_without_one(tmp_path, capsys):
    plan = write_plan(tmp_path, {**QUICK, "schedule": {"zone": "Europe/Berln", "at": "2027-03-27T20:00"}})
    assert main(["check", str(plan)]) != 0
    err = capsys.readouterr().err
    assert "schedule.zone: unknown time zone 'Europe/Berln'" in err and "schedule.at: 2027-03-27T20:00:00 has no zone" in err
    assert "Traceback" not in err
