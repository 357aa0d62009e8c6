"""The real binary in a real terminal (tmux): keys in, screen text out, journal checked."""

from __future__ import annotations

import getpass
import os
import shlex
import signal
import sys
from pathlib import Path

import pytest

from tests.support.helpers import require_binary
from tests.support.terminal import running, wait_gone
from tests.support.waiting import until
from warroom.store import open_store

WARROOM = str(Path(sys.executable).with_name("warroom"))
pytestmark = pytest.mark.slow


def assert_clean_stop(state: Path) -> None:
    """The demo's engine ended with the demo, cleanly: its stop is journaled (the launch was live: loudly) and its lease released."""
    store = open_store(state, create=False)
    assert store.entries()[-1].kind in ("engine.stop", "engine.left")
    assert store.lease().holder is None


def test_demo_rollback_in_tmux_then_hangup_leaves_a_clean_journal(tmux, tmp_path):
    state = tmp_path / "demo.sqlite"
    tmux.start(f"{WARROOM} --state {state}")
    tmux.wait_for("RUNNING")
    screen = tmux.wait_for("Connection success")  # the full 120-column layout, panes drawn
    assert "DRILL" in screen and "[RW]" in screen and "1/5 Beta 5%" in screen
    pid = tmux.pid()

    tmux.run("send-keys", "-t", tmux.name, "R")
    screen = tmux.wait_for("ROLLED BACK")
    assert "ROLLBACK by" in screen

    # Losing the terminal (SSH drop) sends SIGHUP: the console must end, and cleanly.
    tmux.run("kill-session", "-t", tmux.name)
    wait_gone(pid)

    entries = open_store(state, create=False).entries()
    intent = [e for e in entries if e.kind == "rollback.intent"]
    assert len(intent) == 1 and intent[0].data["actor"]["user"] == getpass.getuser()
    kinds = [e.kind for e in entries]
    assert "rollback.confirmed" in kinds and "rollback.outcome" in kinds
    assert_clean_stop(state)


def test_a_terminal_that_closes_without_sighup_still_ends_the_console(tmux, tmp_path):
    # Not every lost terminal sends SIGHUP: here warroom runs in a session of its own, so
    # the hang-up signal goes to setsid alone. Reads then return nothing at once (Textual's
    # input thread spins on them) and writes fail, so the console must notice by itself.
    state = tmp_path / "demo.sqlite"
    tmux.start(f"{require_binary('setsid')} -w {WARROOM} --state {state}")
    tmux.wait_for("Connection success")
    setsid = tmux.pid()
    (pid,) = map(int, Path(f"/proc/{setsid}/task/{setsid}/children").read_text().split())
    tmux.run("kill-session", "-t", tmux.name)
    try:
        wait_gone(pid)
    finally:
        if running(pid):  # do not leave a spinning console behind a failed test
            os.kill(pid, signal.SIGKILL)
    assert_clean_stop(state)


def test_no_color_and_16_colours_still_say_everything_in_words(tmux, tmp_path):
    state = tmp_path / "demo.sqlite"
    # The shell stays after warroom so that what it prints on leaving can be read.
    command = f"sh -c {shlex.quote(f'{WARROOM} --state {state}; sleep 60')}"
    tmux.start(command, env={"NO_COLOR": "1", "TEXTUAL_COLOR_SYSTEM": "standard"})
    screen = tmux.wait_for("RUNNING")
    assert "▞▞ DRILL ▞▞" in screen and "[RW]" in screen and "ROLLBACK" in screen
    tmux.run("send-keys", "-t", tmux.name, "q")
    # The demo's state is in a temporary folder: on leaving it says where its journal is.
    screen = tmux.wait_for("the demo's journal")
    assert f"the demo's journal: warroom journal --state {state}" in screen.replace("\n", "")  # long lines wrap


def test_console_drill_shows_its_score_card_and_saves_it(tmux, tmp_path):
    # The flag service is down when the automatic rollback starts (flag faults reach the
    # console's engine too); at 10× speed the whole drill takes a few seconds.
    state = tmp_path / "drill" / "state.sqlite"
    tmux.start(f"sh -c '{WARROOM} drill --scenario flag-service-down-during-rollback --speed 10 --state {state}; "
               "echo EXIT=$?; sleep 60'")
    screen = tmux.wait_for("failed: HTTP 503 from the flag service (drill fault)")
    assert "▞▞ DRILL ▞▞" in screen
    screen = tmux.wait_for("DRILL SCORE: Flag service down during rollback")
    assert "— PASS" in screen and "▞▞ DRILL ▞▞" in screen.splitlines()[0]  # the banner, over the card too
    assert "time to mitigate:" in screen and "ROLLED BACK" in screen

    tmux.run("send-keys", "-t", tmux.name, "Escape")
    # The card gone before q: an Esc followed at once by q would read as Alt+q.
    until("the score card to close", lambda: "Saved in the journal (drill.score)" not in tmux.screen(), every=0.1)
    tmux.run("send-keys", "-t", tmux.name, "q")
    screen = tmux.wait_for("EXIT=0")
    assert "DRILL SCORE: Flag service down during rollback [flag-service-down-during-rollback] — PASS" in screen

    entries = open_store(state, create=False).entries()
    kinds = [e.kind for e in entries]
    assert kinds.count("drill.start") == 1 and kinds.count("drill.score") == 1
    assert kinds.index("drill.start") < kinds.index("step.intent") < kinds.index("drill.score")
    card = next(e for e in entries if e.kind == "drill.score").data["card"]
    assert card["passed"] and card["failed_attempts"] >= 6 and card["final_state"] == "ROLLED BACK"
