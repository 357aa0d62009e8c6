"""One truth: the status page, a console (in tmux) and `status --json` say the same state, phase,
exposure, worst condition and guardrail numbers for the same snapshot; when the engine is
gone, the page says so plainly (and how old its numbers are), on its plain page and its live
stream; and while the flag service hangs, the engine goes on publishing (its tick reads the
flags within a budget) and the page says how old the flags' reading is. (Numbers a live engine
has stopped publishing are called stale: tests/page/test_view.py.)"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import sys
import threading
from pathlib import Path

import httpx

from tests.flags.flagservice import FlagService
from tests.support.chromium import Loaded
from tests.support.engines import engine_pid
from tests.support.waiting import until
from warroom.core.units import format_value
from warroom.page.view import STALE_FLOOR

BINARY = str(Path(sys.executable).with_name("warroom"))


def published(state: Path) -> int:
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5) as db:
        row = db.execute("SELECT seq FROM snapshot WHERE id = 1").fetchone()
    return row[0] if row else 0


def test_the_page_a_console_and_status_json_agree_on_one_snapshot(serve, tmux):
    served = serve({"poll_interval": "5s"})
    state = served.folder / "state.sqlite"
    until("the page in phase 1", lambda: "1/3 Canary 5%" in served.get().text)
    tmux.start(f"{BINARY} {served.plan}", size=(120, 36))
    tmux.wait_for("1/3 Canary 5%", timeout=60)
    until("the console's flags table read back", lambda: re.search(r"feature\s+5%\s+5%", tmux.screen()))

    def one_snapshot() -> tuple[str, dict, str] | None:
        before = published(state)
        screen = tmux.screen()
        status = json.loads(served.verb("status", "--json").stdout)
        page = served.get().text
        # The same publication throughout, and the page rendered from it (its tick is the snapshot's).
        if published(state) != before or f'data-tick="{status["tick"]}"' not in page:
            return None
        return screen, status, page

    screen, status, page = until("a console, status and the page on one snapshot", one_snapshot)
    shown = Loaded(page, "")
    banner, strip = screen.splitlines()[:2]
    assert shown.text("worst") == shown.text("state") == status["state"] == "RUNNING" and f" {status['state']} " in banner
    phase = f"{status['phase']['index']}/{status['phase_count']} {status['phase']['name']}"
    assert shown.text("phase") == phase and strip.strip().startswith(phase)
    assert shown.text("exposure") == status["phase"]["exposure"] == "feature 5%"
    observed = {f["name"]: f for f in status["flags"]}
    assert re.search(r"feature\s+5%\s+5%", screen) and observed["feature"]["observed"] is not None, screen
    assert status["guardrails"], "the plan's guardrails"
    for guard in status["guardrails"]:
        value = format_value(guard["value"], guard["unit"])
        row = re.search(rf'data-guardrail="{guard["id"]}">(.*?)</tr>', page, re.S).group(1)
        assert f'class="value">{value}</td>' in row, (value, row)
        pane = next(p for p in status["panes"] if p["id"] == guard["target"])
        assert format_value(pane["value"], pane["unit"]) == value and value in screen, (value, screen)


def test_with_the_engine_gone_the_page_says_so_and_how_old_its_numbers_are(serve):
    served = serve()
    until("the page in phase 1", lambda: "1/3 Canary 5%" in served.get().text)
    assert 'id="engine-gone"' not in served.get().text
    os.kill(engine_pid(served.folder / "state.sqlite"), signal.SIGKILL)
    gone = until("the page saying the engine is gone", lambda: 'id="engine-gone"' in (page := served.get().text) and page)
    shown = Loaded(gone, "")
    assert shown.text("worst") == "NO ENGINE — guardrails NOT enforced"
    assert shown.text("engine-gone").startswith("No engine is running this launch: nothing watches its guardrails or acts on them.")
    # Past the stale threshold, the numbers' age is said too: on the page, and on the live stream.
    # Said as soon as they pass it (`10s`, `1m05s`, in whole seconds): the wait is the page's threshold, not a minute.
    stale = until("the numbers' age", lambda: re.search(r"the numbers are (?:(\d+)m)?(\d+)s old", served.get().text))
    assert int(stale.group(1) or 0) * 60 + int(stale.group(2)) >= STALE_FLOOR
    with httpx.stream("GET", served.url + "/events", timeout=30) as events:
        lines = events.iter_lines()
        assert next(lines) == "event: page"
        first = "".join(line.removeprefix("data: ") for line in iter(lambda: next(lines), ""))
    assert 'id="engine-gone"' in first and "NO ENGINE" in first and "old" in first


def test_a_hanging_flag_service_leaves_the_numbers_fresh_and_the_page_says_how_old_the_flags_reading_is(serve, monkeypatch):
    service = FlagService("flag-token-stale-numbers-7c2").start()
    monkeypatch.setenv("WARROOM_TEST_FLAG_TOKEN", service.token)
    hang = threading.Event()
    try:
        # A read timeout far past the page's stale threshold: the tick reads the flags within its budget, never waits it out.
        served = serve({"flag_provider": {"provider": "http", "url": service.url, "token": "env:WARROOM_TEST_FLAG_TOKEN",
                                          "timeout": "50s"}})
        until("fresh numbers in phase 1", lambda: "1/3 Canary 5%" in (page := served.get().text) and 'id="stale"' not in page)
        service.delay = hang  # every request to the flag service now waits until the test lets it go
        old = until("the page saying the flags' reading is old while the numbers stay fresh",
                    lambda: re.search(r"read (?:\d+m)?\d+s ago", page := served.get().text) and page, timeout=45)
        assert 'id="stale"' not in old and 'id="engine-gone"' not in old  # the engine goes on judging and publishing
        ticked = int(re.search(r'data-tick="(\d+)"', old).group(1))
        until("the engine publishing later ticks while the flag service hangs",
              lambda: int(re.search(r'data-tick="(\d+)"', served.get().text).group(1)) > ticked)
        status = json.loads(served.verb("status", "--json").stdout)
        assert status["engine"]["alive"], status["engine"]
        service.delay = 0.0
        hang.set()
        until("the flags read afresh once the flag service answers", lambda: not re.search(r"read (?:\d+m)?\d+s ago", served.get().text))
    finally:
        hang.set()
        service.stop()
