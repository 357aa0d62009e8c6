"""The console tells the truth at a glance and uses the room it is given.

Real engine, simulator, local flag file or a real loopback flag service, SQLite; the
screen is read cell by cell (tests.tui.conftest.screen_text).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import pytest

from tests.conftest import ALICE
from tests.flags.conftest import FLAG_TOKEN
from tests.flags.flagservice import FlagService
from tests.tui.conftest import palette_text, screen_text
from warroom.core.clock import RealClock
from warroom.core.snapshot import State
from warroom.plan.faults import Fault
from warroom.tui.keymap import ACTIONS
from warroom.tui.parts import resolve
from warroom.tui.screens.confirm import ConfirmDialog
from warroom.tui.screens.zoom import ZoomScreen
from warroom.tui.widgets.banner import Banner
from warroom.tui.widgets.checklist import Checklist
from warroom.tui.widgets.flags_table import FlagsTable
from warroom.tui.widgets.keys_bar import KeysBar
from warroom.tui.widgets.metric_pane import MetricPane
from warroom.tui.widgets.notice_bar import NoticeBar
from warroom.tui.widgets.rollback_panel import RollbackPanel
from warroom.tui.widgets.spark import pane_scale, spark_rows
from warroom.tui.widgets.status_line import StatusLine, short_blocker, status_text

# Errors at 3% from 2 s into phase 1, in a dependency both cohorts share (a rollback does not
# clear it); the demo's 10 s `for` window fills from 3 s in.
ERROR_SPIKE = (Fault(metric="error_rate", phase=1, after=2, value=0.03, while_exposed=False),)
ELEVEN = [{"text": f"Item {i:02d} of the launch checklist", "required": i % 3 == 0} for i in range(1, 12)]


def banner(app, part: str = "#state") -> str:
    return app.query_one(Banner).shown(part)


def strip(app) -> str:
    return app.query_one(Banner).shown("strip")


def rows_of(app, widget) -> list[str]:
    """The screen's text inside a widget's region, line by line."""
    lines = screen_text(app).splitlines()
    region = widget.region
    return [line[region.x:region.right].rstrip() for line in lines[region.y:region.bottom]]


def eleven_items(test_plan):
    phases = [{"name": "Canary 5%", "flags": {"feature": 5}, "hold": "1m", "checklist": ELEVEN,
               "gates": [{"name": "errors low", "pane": "errors", "below": 0.001}]},
              {"name": "Full 100%", "flags": {"feature": 100}, "hold": "0s"}]
    return test_plan({"phases": phases})


async def into_phase_one(c, pilot) -> None:
    await c.tick(pilot)
    await c.call(lambda: c.engine.step_up(ALICE))
    await c.tick(pilot)


# ------------------------------------------------------------------ the banner


async def test_banner_says_the_worst_live_condition_in_words(console):
    c = console(faults=ERROR_SPIKE)
    async with c.app.run_test(size=(120, 36)) as pilot:
        await c.tick(pilot, times=2)
        assert banner(c.app) == "RUNNING"
        await c.tick(pilot, times=4)  # the breach began at 3 s; the window ends at 13 s; now is 6 s
        assert banner(c.app) == "ROLLBACK IN 7s"
        assert banner(c.app, "#why").startswith("error-rate: error_rate 3.00% > 1.00%")
        # The state alone said RUNNING here: the countdown is what the eye must meet first.
        assert c.app.snapshot.state == State.RUNNING
        await c.tick(pilot, times=8)
        assert c.app.snapshot.state == State.ROLLED_BACK and banner(c.app) == "ROLLED BACK"
        assert banner(c.app, "#why").startswith("guardrail error-rate: error_rate 3.00% above 1.00% (held 10s)")
        assert c.host.stop()  # the engine is gone, but nobody is on the new code: no alarm (test_truth.py)
        await c.until(pilot, lambda: not c.app.engine_alive)
        assert banner(c.app) == "ROLLED BACK"


async def test_banner_names_pause_no_data_and_drift(console, test_plan):
    dark = (Fault(mode="dark", phase=1, after=10),)
    c = console(test_plan(), faults=dark)
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        await c.call(lambda: c.engine.pause(ALICE, "checking p99 with the database team"))
        await c.tick(pilot)
        assert (banner(c.app), banner(c.app, "#why")) == ("PAUSED", "checking p99 with the database team")
        await c.call(lambda: c.engine.resume(ALICE))
        await c.tick(pilot, seconds=10)  # the service goes dark: the source, once, not each of its panes
        assert banner(c.app) == "SOURCE ERROR"
        assert banner(c.app, "#why") == "sim: simulated outage: the metrics source is dark"
        assert banner(c.app, "#age") == "data 10s ago"


async def test_banner_clock_and_countdowns_move_every_second_with_a_5s_poll(console, test_plan):
    # A real clock and a 5 s poll: between two polls the screen must still move, or a frozen
    # console cannot be told from a quiet one.
    c = console(test_plan(), clock=RealClock())
    assert c.engine.plan.poll_interval == 5.0
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        ticks = c.engine.tick_count
        seen: list[tuple[str, str, str]] = []

        def moved() -> bool:
            shown = (banner(c.app, "#clock"), strip(c.app), banner(c.app, "#age"))
            if not seen or seen[-1] != shown:
                seen.append(shown)
            return all(len({s[i] for s in seen}) >= 3 for i in range(3))  # clock, soak and data age

        await c.until(pilot, moved, "the clock, the soak and the data age to move three times")
        assert c.engine.tick_count == ticks  # nothing was polled meanwhile
        clocks = [time.strptime(clock, "%H:%M:%SZ") for clock, _, _ in seen]
        for before, after in pairwise(clocks):
            # Forward at each change (a busy machine may show a second late, so not always by one).
            assert 0 < (time.mktime(after) - time.mktime(before)) % 86400 < 43200, seen


# ------------------------------------------------------------------ notices


async def test_eleven_ticks_in_a_row_leave_no_notice_over_the_banner_or_the_flags(console, test_plan):
    c = console(eleven_items(test_plan))
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        for _ in range(11):
            await pilot.press("space", "down")
        await c.until(pilot, lambda: all(i.ticked for i in c.app.snapshot.phase.checklist))
        await c.answered(pilot)
        # Routine ticks are the journal's to say, not pop-ups.
        assert c.notices == []
        assert [e.message for e in c.app.snapshot.journal[:2]] == ["ticked: Item 11 of the launch checklist",
                                                                  "ticked: Item 10 of the launch checklist"]
        assert not c.app.screen.query("Toast")
        # A notice that does come (a refusal) takes its own line: never the banner's or the flags'.
        await pilot.press("a")
        await c.until(pilot, lambda: c.app.query_one(NoticeBar).display)
        await pilot.press("a")  # one notice at a time: the newer replaces the older
        await c.answered(pilot)
        notice = c.app.query_one(NoticeBar)
        assert notice.region.height == 1 and not c.app.screen.query("Toast")
        for widget in (c.app.query_one(Banner), c.app.query_one(FlagsTable)):
            assert not notice.region.overlaps(widget.region)
        assert rows_of(c.app, notice) == [" acknowledge drift: refused: no flag drift to acknowledge"]


# ------------------------------------------------------------------ layout priorities


async def test_eleven_items_get_the_rows_and_keep_their_gates_and_count(console, test_plan):
    plan = eleven_items(test_plan)
    wide = console(plan)
    async with wide.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(wide, pilot)
        shown = rows_of(wide.app, wide.app.query_one(Checklist))
        assert shown[0] == " Phase 1/2 Canary 5%  * required 0/3"
        assert shown[1].strip().startswith(("✔ gate errors low", "✘ gate errors low"))
        assert [line.strip()[4:].strip() for line in shown[2:]] == [i["text"] for i in ELEVEN]
    wide.host.stop()
    narrow = console(plan)
    async with narrow.app.run_test(size=(80, 24)) as pilot:
        await narrow.tick(pilot)
        for _ in range(10):
            await pilot.press("down")
        await pilot.pause()
        shown = rows_of(narrow.app, narrow.app.query_one(Checklist))
        # Scrolled to the last item: the heading and the gate stay, a note says what is above.
        assert shown[0].startswith(" Phase 1/2 Canary 5%") and "errors low" in shown[1]
        assert shown[2].strip().startswith("▲") and shown[2].strip().endswith("more above")
        assert shown[-1].startswith(" ▸[ ] Item 11")
        assert len(rows_of(narrow.app, narrow.app.query_one("Timeline"))) >= 3  # the journal keeps its lines


async def test_a_flag_service_outage_keeps_every_name_desired_and_observed_whole(console, test_plan, monkeypatch):
    monkeypatch.setenv("WARROOM_TEST_FLAG_TOKEN", FLAG_TOKEN)
    name = "realtime-features-websocket"
    for width, height in ((80, 24), (120, 36)):
        service = FlagService(FLAG_TOKEN).start()
        provider = {"provider": "http", "url": service.url, "token": "env:WARROOM_TEST_FLAG_TOKEN", "timeout": "1s"}
        sim = {"type": "simulator", "seed": 1, "flag": name, "noise": 0}
        phases = [{"name": "Canary 5%", "flags": {name: 5, "health_simple": 100}, "hold": "0s"}]
        c = console(test_plan({"phases": phases, "flag_provider": provider, "sources": {"sim": sim},
                               "state": f"state-{width}.sqlite"}))
        try:
            async with c.app.run_test(size=(width, height)) as pilot:
                await into_phase_one(c, pilot)
                service.fail_status = 503
                await c.tick(pilot)
                rows = rows_of(c.app, c.app.query_one(FlagsTable))
                assert rows[0].split() == ["flag", "desired", "observed"]
                assert rows[1].split()[:4] == [name, "5%", "?", "unreadable"], rows
                assert any(row.strip().startswith("HTTP 503") for row in rows), rows  # the reason, beside or below
                assert banner(c.app) == "NO DATA" and banner(c.app, "#why") == f"flags {name}, health_simple unreadable"
        finally:
            c.host.stop()
            service.stop()


async def test_the_reason_a_step_is_blocked_wraps_instead_of_being_cut(console):
    c = console()
    async with c.app.run_test(size=(80, 24)) as pilot:
        await c.tick(pilot, times=8)  # past the exposure check's settling: soak and the checklist block
        text, _ = status_text(c.app.snapshot)
        assert len(text) > 80
        rows = rows_of(c.app, c.app.query_one(StatusLine))
        assert len(rows) == 2 and " ".join(r.strip() for r in rows) == text
    # The source down, said once, and twelve reasons (soak, two gates, the exposure check and seven
    # guardrails without data, a required item) do not fit two lines whole, nor without their
    # details, nor with gates and guardrails counted: each kind is then said in a few words.
    dark = console(faults=(Fault(mode="dark", phase=1, after=3),))
    async with dark.app.run_test(size=(80, 24)) as pilot:
        await dark.tick(pilot, times=8)
        assert len(dark.app.snapshot.step_blockers) == 12
        shown = " ".join(r.strip() for r in rows_of(dark.app, dark.app.query_one(StatusLine)))
        assert shown == ("source error: service: simulated outage: the metrics source is dark; step up blocked: soak: until "
                         "08:00:21Z; 2 gates not green; exposure: new cohort's units; checklist: 1 required item(s) not ticked; "
                         "7 guardrails not green")
    wide = console(faults=(Fault(mode="dark", phase=1, after=3),))
    async with wide.app.run_test(size=(200, 60)) as pilot:
        await wide.tick(pilot, times=8)
        shown = " ".join(r.strip() for r in rows_of(wide.app, wide.app.query_one(StatusLine)))
        # The soak is said as the moment it ends (the strip counts it down): a steady line.
        blockers = ["soak: until 08:00:21Z", *wide.app.snapshot.step_blockers[1:]]
        assert shown == ("source error: service: simulated outage: the metrics source is dark; step up blocked: "
                         + "; ".join(short_blocker(b) for b in blockers))


# ------------------------------------------------------------------ charts


def test_a_calm_pane_draws_a_calm_line_and_a_breach_stands_out():
    # p50 moving 17 → 19 ms against a 100 ms breach: a low, flat line, not ▁ to █.
    scale = pane_scale([0.017, 0.018, 0.019], 0.1, "above", "seconds")
    (row,) = spark_rows([0.017, 0.018, 0.019], 3, 1, scale)
    assert row.plain == "▁▁▁"
    # Past the threshold: drawn in the breach style; two rows and more show the threshold itself.
    rows = spark_rows([0.017, 0.5, None], 3, 3, scale, bar="green", breach="bold red", limit="yellow")
    assert [r.plain for r in rows] == ["╌█╌", " █ ", "▃█ "]
    assert [(s.start, s.end, s.style) for s in rows[1].spans] == [(1, 2, "bold red")]
    # A pane that is bad below its threshold (connection success ≥ 95 %) draws its fall from 100 %:
    # healthy is a low line there too, and the threshold sits where every other pane's does.
    low = pane_scale([0.998], 0.95, "below", "ratio")
    assert low.limit == 0.95 and low.high == 1.0 and low.fraction(0.998) < 0.05 and low.fraction(0.95) == pytest.approx(0.8)


async def test_a_breaching_value_is_marked_and_reversed_and_its_window_labelled(console):
    c = console(faults=ERROR_SPIKE)
    async with c.app.run_test(size=(120, 36)) as pilot:
        await c.tick(pilot, times=6)
        pane = c.app.query_one("#pane-error_rate", MetricPane)
        assert rows_of(c.app, pane)[0].endswith("▲ 3.00%")
        assert pane.part("value-breach").reverse  # the loudest cell in any theme and under NO_COLOR
        # Styles kept for speed follow a theme change.
        for _ in range(2):
            for part in ("bar-breach", "breach", "value-breach"):
                assert pane.part(part) == resolve(pane.PARTS[part], c.app.get_css_variables(), pane.background_colors[1])
            await pilot.press("t")
            await pilot.pause()
        # One cell a poll: six polls drawn, six seconds said.
        assert rows_of(c.app, c.app.query_one("#pane-latency_p50", MetricPane))[-1].strip() == "≤100 ms · last 6s"


async def test_z_zooms_the_alarming_pane_with_its_history_threshold_and_for_window(console):
    c = console(faults=ERROR_SPIKE)
    async with c.app.run_test(size=(120, 36)) as pilot:
        await c.tick(pilot, times=6)
        await pilot.press("z")
        assert isinstance(c.app.screen, ZoomScreen) and c.app.screen.pane_id == "error_rate"
        shown = screen_text(c.app)
        assert "ROLLBACK IN 7s" in shown.splitlines()[0]  # the banner stays live over the zoom
        assert "1.00% ╌" in shown and "├for 10s─┤" in shown and "◀ last 6s" in shown
        assert "guardrail error-rate: rollback when > 1.00% for 10s (no data: hold) · pending since 08:00:03Z, rollback in 7s" in shown
        await pilot.press("escape")
        assert not isinstance(c.app.screen, ZoomScreen)
        await pilot.press("tab", "right")  # focus leaves the checklist for the first pane
        focused = c.app.focused
        assert isinstance(focused, MetricPane)
        await pilot.press("enter")
        assert isinstance(c.app.screen, ZoomScreen) and c.app.screen.pane_id == focused.pane.id


# ------------------------------------------------------------------ after a rollback


async def test_after_a_rollback_the_screen_says_what_happened_and_r_retries_after_asking(console):
    c = console(faults=ERROR_SPIKE)
    async with c.app.run_test(size=(120, 36)) as pilot:
        await c.tick(pilot, times=14)
        assert c.app.snapshot.state == State.ROLLED_BACK and c.app.snapshot.action is None
        panel = "\n".join(rows_of(c.app, c.app.query_one(RollbackPanel)))
        for part in ("ROLLED BACK at 08:00:13Z\n asked  08:00:13Z by automation",
                     "why    guardrail error-rate: error_rate 3.00% above 1.00% (held 10s)",
                     "flags  ✔ confirmed off by read-back",
                     "· dry run  Drain WebSocket connections (demo)  would run",
                     "next   r retry: start again at phase 1 (asks first)"):
            assert part in panel, part
        assert not c.app.query_one(Checklist).display  # no stale gates ✔ under ROLLED BACK
        assert strip(c.app).startswith("[exposure 0% ⟲ rolled back] from 1/5 Beta 5%")
        hints = c.app.query_one(KeysBar).hints
        assert [h.binding_id for h in hints][:1] == ["retry"] and all(h.enabled for h in hints)
        await pilot.press("r")
        assert isinstance(c.app.screen, ConfirmDialog) and c.app.focused.id == "cancel"
        await pilot.press("enter")
        assert c.notices[-1] == "retry cancelled: still ROLLED BACK"
        await pilot.press("r", "tab", "enter")
        await c.until(pilot, lambda: c.app.snapshot.state == State.PENDING)
        assert [e.kind for e in c.engine.store.entries()].count("retry") == 1


async def test_a_rollback_that_is_not_done_after_all_is_not_shown_as_rolled_back(console, test_plan, monkeypatch):
    monkeypatch.setenv("WARROOM_TEST_FLAG_TOKEN", FLAG_TOKEN)
    service = FlagService(FLAG_TOKEN).start()
    provider = {"provider": "http", "url": service.url, "token": "env:WARROOM_TEST_FLAG_TOKEN", "timeout": "1s"}
    c = console(test_plan({"flag_provider": provider}), clock=RealClock())  # the re-assert retries in real time
    c.cleanup.append(service.stop)
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        await c.call(lambda: c.engine.rollback(ALICE, "p99 climbing"))
        await c.settle(pilot)
        assert c.app.snapshot.state == State.ROLLED_BACK
        # A late write lands after the rollback, and the flag API now refuses to switch it off.
        with service.lock:
            service.flags["feature"].update(enabled=True, rollout_percentage=50.0)
            service.refuse_disable = True
        await c.tick(pilot)
        # The engine is setting it off again, and every part of the screen says it is not done.
        await c.until(pilot, lambda: c.app.snapshot.action is not None and c.app.snapshot.action.attempt >= 1)
        assert banner(c.app).startswith("ROLLING BACK attempt ")
        assert re.match(r"attempt \d+ failed: feature: HTTP 503", banner(c.app, "#why"))
        assert strip(c.app).startswith("[exposure 50% → 0% ⟲ rolling back]")
        panel = "\n".join(rows_of(c.app, c.app.query_one(RollbackPanel)))
        assert re.search(r"→ feature off: attempt \d+ failed, retrying: feature:", panel) and "confirmed off" not in panel
        assert re.match(r"ROLLING BACK: feature off — attempt \d+ failed", str(c.app.query_one(StatusLine).render()))
        assert "rollback.reassert" in c.kinds()


# ------------------------------------------------------------------ palette, help


def lines_of(shown: str) -> list[str]:
    return [line.strip() for line in shown.splitlines()]


async def test_palette_leads_with_warroom_actions_and_their_keys(console, test_plan):
    c = console(test_plan({"keys": {"rollback": "x"}}))
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        await pilot.press("colon")
        await c.until(pilot, lambda: {"Step up   s", "Roll back now   x"} <= set(lines_of(palette_text(c.app))), "the palette's actions")
        shown = screen_text(c.app)
        lines = lines_of(shown)
        first = next(i for i, line in enumerate(lines) if line.startswith("Step up"))
        assert lines[first] == "Step up   s"
        assert "Roll back now   x" in lines  # the key as remapped by the plan
        for textual_own in ("Theme", "Keys", "Screenshot", "Maximize", "Quit the application"):
            assert textual_own not in shown


# ------------------------------------------------------------------ a terminal, or nothing


def test_the_console_refuses_to_start_without_a_terminal(tmp_path: Path):
    state = tmp_path / "demo.sqlite"
    proc = subprocess.run([sys.executable, "-m", "warroom", "--state", str(state)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)  # it ends (refusing), never waits for a terminal
    assert proc.returncode == 2
    assert "the console needs a terminal" in proc.stderr and "warroom run --headless PLAN" in proc.stderr
    assert not state.exists()  # no engine was built: no state, no automation lease taken
    drill = subprocess.run([sys.executable, "-m", "warroom", "drill", "--state", str(state)], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60)
    assert drill.returncode == 2 and "warroom drill --headless PLAN" in drill.stderr


def test_the_readme_lists_every_key_of_the_actions_table():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Keys", 1)[1].split("\n\n", 3)[2]  # the table after its lead-in
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| `")]
    documented = {i.strip("`") for row in rows for i in row[1].split(", ")}
    assert documented == {a.id for a in ACTIONS if a.keys}
