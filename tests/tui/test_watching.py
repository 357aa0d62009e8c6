"""The console as a person watches it: real `warroom` processes in tmux, the screen captured
each second and read by the test, at the sizes of a laptop and an 80×24 terminal.

What a state's snapshot cannot show is what time does to a screen: a countdown running out
behind a dialog, numbers ageing once nothing samples them, the words left on the terminal
when a console quits.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest
import yaml

from tests.support.engines import engine_pid, wait_for_engine
from tests.support.terminal import Tmux, running
from tests.support.waiting import until

WARROOM = str(Path(sys.executable).with_name("warroom"))
pytestmark = pytest.mark.slow


def plan_file(tmp_path: Path, **changes) -> Path:
    """The built-in demo as a plan file of the test's own, with top-level keys replaced."""
    data = yaml.safe_load(resources.files("warroom.plan").joinpath("demo.yaml").read_text(encoding="utf-8"))
    data.update(changes)
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def warroom(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([WARROOM, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def watch(tmux: Tmux, until_seen: str, timeout: float = 60.0) -> list[str]:
    """A capture each second, as a person glancing at the screen, until `until_seen` shows."""
    screens: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screens.append(tmux.screen())
        if until_seen in screens[-1]:
            return screens
        time.sleep(1.0)
    raise AssertionError(f"{until_seen!r} never showed in {timeout:g}s; the last screen:\n{screens[-1]}")


def countdowns(screens: list[str]) -> list[int]:
    return [int(m.group(1)) for s in screens if (m := re.search(r"ROLLBACK IN (\d+)s", s.splitlines()[0]))]


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_help_open_through_a_countdown_and_a_rollback_shows_both(tmux, tmp_path, size):
    # Errors at 3% from 4 s into phase 1 (entered at the first poll): a 10 s window, then a rollback.
    sim = {"type": "simulator", "seed": 42, "flag": "realtime-features",
           "faults": [{"metric": "error_rate", "phase": 1, "after": "4s", "value": 0.03, "while_exposed": False}]}
    plan = plan_file(tmp_path, sources={"service": sim})
    tmux.start(f"{WARROOM} {plan}", size=size)
    tmux.wait_for("RUNNING")
    tmux.run("send-keys", "-t", tmux.name, "?")
    tmux.wait_for("Esc")
    screens = watch(tmux, "ROLLED BACK")
    opened = [s for s in screens if "Esc" in s]  # the help's own words: it stayed open
    assert len(opened) == len(screens), screens[-1]
    for screen in screens:
        assert "demo-realtime-features" in screen.splitlines()[0], screen
    seen = countdowns(screens)
    assert len(seen) >= 3 and seen == sorted(seen, reverse=True), seen  # the countdown, watched second by second
    assert "ROLLED BACK" in screens[-1].splitlines()[0]


def test_with_the_engine_gone_the_numbers_age_and_say_stale_and_the_soak_stops(tmux, tmp_path):
    plan = plan_file(tmp_path, automation={"step_up": "manual"})
    assert warroom("up", str(plan)).returncode == 0
    assert warroom("step", str(plan)).returncode == 0
    tmux.start(f"{WARROOM} {plan}", size=(120, 36))
    tmux.wait_for("1/5 Beta 5%")
    state = tmp_path / "demo.sqlite"
    engine = wait_for_engine(state)
    assert warroom("down", str(plan), "--force").returncode == 0
    until("the engine to be gone", lambda: not running(engine), 30)
    tmux.wait_for("NO ENGINE", timeout=30)
    tmux.wait_for("STALE", timeout=10)  # the numbers on screen are the last ones sampled, and say so
    screens = [tmux.screen()]
    for _ in range(4):
        time.sleep(1.0)
        screens.append(tmux.screen())
    ages = [int(m.group(2) or 0) for s in screens if (m := re.search(r"data (now|(\d+)s ago)", s))]
    assert len(ages) == len(screens) and ages == sorted(ages) and ages[-1] >= ages[0] + 3, ages
    soaks = {re.search(r"soak \S+", s).group() for s in screens}
    assert len(soaks) == 1, soaks  # nothing soaks the phase with no engine
    assert screens[-1].count("STALE") >= 4, screens[-1]


def test_quitting_a_console_that_started_the_engine_says_it_keeps_running_and_how_to_stop_it(tmux, tmp_path):
    plan = plan_file(tmp_path, automation={"step_up": "manual"})
    for state_word in ("PENDING", "ROLLED BACK"):
        tmux.start(f"{WARROOM} {plan}; sleep 60", size=(120, 36))
        tmux.wait_for(state_word, timeout=30)
        pid = engine_pid(tmp_path / "demo.sqlite")
        tmux.run("send-keys", "-t", tmux.name, "q")
        tmux.wait_for("warroom down", timeout=30)
        screen = tmux.run("capture-pane", "-p", "-J", "-t", tmux.name)  # its lines joined where the terminal wrapped them
        assert running(pid)
        assert f"pid {pid}" in screen and "keeps running" in screen and f"warroom down {plan}" in screen, screen
        tmux.run("kill-server")
        if state_word == "PENDING":
            assert warroom("rollback", str(plan)).returncode == 0


def test_a_console_attaching_to_its_engine_shows_the_plan_the_engine_saved_not_the_file_parsed_again(tmux, tmp_path):
    """Issue 22 item 9: attaching reads the plan the engine kept in the store (fast, and the truth of
    what runs); the file is only looked at to find the store. Edited since with a key the full load
    refuses, it would otherwise stop the console with a plan error while the engine guards on."""
    plan = plan_file(tmp_path, automation={"step_up": "manual"})
    assert warroom("up", str(plan)).returncode == 0
    wait_for_engine(tmp_path / "demo.sqlite")
    data = yaml.safe_load(plan.read_text())
    data["rollout"]["name"], data["poll_intervall"] = "edited-after-up", "1s"  # its `state:` still names the engine's store
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    refused = warroom("status", str(plan))
    assert refused.returncode == 1 and "poll_intervall" in refused.stderr, refused.stderr  # the full load refuses the file
    tmux.start(f"{WARROOM} {plan}; sleep 60", size=(120, 36))  # the shell stays: a refusal stays readable
    screen = tmux.wait_for("PENDING", timeout=30)
    assert "demo-realtime-features" in screen and "edited-after-up" not in screen and "poll_intervall" not in screen, screen
