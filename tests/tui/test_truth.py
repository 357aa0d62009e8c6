"""What misled a new user at 3 AM (issue 23), each read off the screen as a person reads it.

Real engine, simulator, local flag file or a real loopback flag service, SQLite; the
screen is read cell by cell (tests.tui.conftest.screen_text), at the sizes named.
"""

from __future__ import annotations

import dataclasses
import re
import threading

import pytest

from tests.conftest import ALICE
from tests.support.helpers import free_port
from tests.support.waiting import DEADLINE, until_async
from tests.tui.conftest import screen_text
from tests.tui.test_glance import ERROR_SPIKE, banner, into_phase_one, rows_of, strip
from tests.tui.test_snapshots import demo, one_flag_phases, refusing_flag_api, rolling_back
from warroom.core.clock import RealClock
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import State
from warroom.core.units import format_value
from warroom.core.verbs import Verb
from warroom.plan.faults import Fault
from warroom.tui.keymap import ACTIONS
from warroom.tui.screens.help import HelpScreen
from warroom.tui.screens.step_dialog import StepDialog
from warroom.tui.screens.zoom import ZoomScreen
from warroom.tui.widgets.checklist import Checklist
from warroom.tui.widgets.phase_strip import strip_text
from warroom.tui.widgets.rollback_panel import RollbackPanel
from warroom.tui.widgets.status_line import StatusLine
from warroom.tui.widgets.timeline import Timeline

SIZES = ((80, 24), (120, 36))


def pane_rows(app, pane_id: str) -> list[str]:
    return rows_of(app, app.query_one(f"#pane-{pane_id}"))


def chart_row(app, pane_id: str) -> str:
    """The bars of a pane's one-row chart, as drawn (without the value beside it)."""
    rows = pane_rows(app, pane_id)
    bars = [re.sub(r"[^▁▂▃▄▅▆▇█]", "", row) for row in rows]
    return next(b for b in bars if b)


def status(app) -> str:
    return " ".join(r.strip() for r in rows_of(app, app.query_one(StatusLine)))


async def gone(c, pilot) -> None:
    assert c.host.stop()
    await c.until(pilot, lambda: c.app.snapshot.engine is not None and not c.app.snapshot.engine.alive)


# ------------------------------------------------------------------ 1. exposure


def health_plan(test_plan):
    """A launch flag and a health check that is on in every phase and stays on after a rollback."""
    phases = [{"name": "Canary 5%", "flags": {"feature": 5, "health_simple": True}, "hold": "0s"},
              {"name": "Full 100%", "flags": {"feature": 100, "health_simple": True}, "hold": "0s"}]
    return test_plan({"phases": phases, "rollback": {"flags": {"feature": False, "health_simple": True}}})


async def test_exposure_is_the_launch_flags_and_a_flag_that_stays_on_is_no_exposure(console, test_plan):
    c = console(health_plan(test_plan))
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        assert strip(c.app).startswith("1/2 Canary 5%  [5% ◉")
        await c.call(lambda: c.engine.rollback(ALICE, "p99 climbing"))
        await c.tick(pilot)
        assert c.app.snapshot.state == State.ROLLED_BACK
        # health_simple stays on at 100% by design: it exposes nobody to the new code.
        assert strip(c.app).startswith("[exposure 0% ⟲ rolled back] from 1/2 Canary 5%"), strip(c.app)
        # The panel's headline names the flags the rollback turned off, not the one it left alone.
        panel = rows_of(c.app, c.app.query_one(RollbackPanel))
        line = next(r for r in panel if r.lstrip().startswith("flags"))
        assert "✔ confirmed off by read-back" in line and "health_simple" not in line, panel
        # Flags that read `absent` expose nobody either, whatever warroom meant to set.
        snap = c.app.snapshot
        absent = dataclasses.replace(snap, state=State.ROLLING_BACK,
                                     flags=tuple(dataclasses.replace(f, observed=None) for f in snap.flags))
        assert strip_text(absent, snap.now, 200).plain.startswith("[exposure 0% ⟲ rolling back]")


# ------------------------------------------------------------------ 2. charts


async def test_a_chart_states_the_span_it_draws_and_shows_a_recovery_within_one_poll(console):
    # 0.8% errors (under the 1% rollback) from 30 s to 60 s in: a minute of history, more than a
    # pane's chart holds at 120 columns; the last sample is the first one recovered.
    spike = (Fault(metric="error_rate", at=30, duration=30, value=0.008, while_exposed=False),)
    c = console(faults=spike)
    async with c.app.run_test(size=(120, 36)) as pilot:
        await c.tick(pilot, times=60)
        history = c.app.snapshot.panes[0].history
        assert len(history) == 60 and history[-1] < 0.002 < history[-2]
        bars = chart_row(c.app, "error_rate")
        meta = pane_rows(c.app, "error_rate")[-1]
        # One cell a poll (1 s): the label says exactly the span drawn, not the chart's width.
        assert len(bars) < 60 and f"last {len(bars)}s" in meta, (bars, meta)
        # Each cell is its sample: the spike where it was, and the recovery a poll ago shows at once.
        assert [b == "▁" for b in bars] == [v < 0.002 for v in history[-len(bars):]], (bars, history[-len(bars):])


async def test_a_pane_bad_below_its_limit_draws_health_low_and_a_pane_without_one_says_so(console):
    c = console()
    async with c.app.run_test(size=(120, 36)) as pilot:
        await c.tick(pilot, times=8)
        success = c.app.snapshot.panes[5]
        assert success.id == "connection_success" and success.value > 0.99
        # 99.8% against a minimum of 95%: healthy, so no tall bar that reads as an alarm.
        assert set(chart_row(c.app, "connection_success")) <= set("▁▂"), pane_rows(c.app, "connection_success")
        assert "no limit" in pane_rows(c.app, "ws_connections")[-1]


async def test_z_with_nothing_breaching_zooms_the_pane_nearest_its_limit(console):
    busy = (Fault(metric="cpu", at=0, value=0.55, while_exposed=False),)  # 55% of a 70% limit; the rest far from theirs
    c = console(faults=busy)
    async with c.app.run_test(size=(120, 36)) as pilot:
        await c.tick(pilot, times=3)
        assert all(p.status == "ok" for p in c.app.snapshot.panes)
        await pilot.press("z")
        assert isinstance(c.app.screen, ZoomScreen) and c.app.screen.pane_id == "cpu"


# ------------------------------------------------------------------ 3. banner over dialogs


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_banner_and_its_countdown_stay_in_sight_over_help_and_the_step_dialog(console, size):
    c = console(faults=ERROR_SPIKE)
    async with c.app.run_test(size=size) as pilot:
        await c.tick(pilot, times=4)  # the breach began at 3 s; its 10 s window ends at 13 s
        for key, screen, left in (("question_mark", HelpScreen, 9), ("s", StepDialog, 8)):
            await pilot.press(key)
            assert isinstance(c.app.screen, screen)
            await c.until(pilot, lambda: screen_text(c.app).strip() != "")
            first = screen_text(c.app).splitlines()[0]
            assert "demo-realtime-features" in first and f"ROLLBACK IN {left}s" in first, screen_text(c.app)
            await c.tick(pilot)  # the countdown moves under the dialog
            first = screen_text(c.app).splitlines()[0]
            assert f"ROLLBACK IN {left - 1}s" in first, first
            await pilot.press("escape")
        await pilot.press("question_mark")
        await c.tick(pilot, times=8)  # the rollback happens with help open: it is seen
        assert "ROLLED BACK" in screen_text(c.app).splitlines()[0]


async def test_help_fits_one_screen_at_80x24_and_says_when_it_scrolls(console, test_plan):
    c = console(test_plan())
    async with c.app.run_test(size=(80, 24)) as pilot:
        await c.tick(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        shown = screen_text(c.app)
        for action in ACTIONS:
            if action.keys:
                assert action.title in shown, action.title
        assert "scroll" in shown  # the words below the keys are further down: it says so


# ------------------------------------------------------------------ 4. no engine


async def test_with_no_engine_panes_are_stale_and_ages_follow_the_wall_clock(console, test_plan):
    c = console(test_plan(), clock=RealClock())
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        await gone(c, pilot)
        soak = re.search(r"soak \S+", strip(c.app)).group()
        age = banner(c.app, "#age")
        # Nothing samples any more: the numbers on screen get older each second, and say so.
        await until_async("the data's age to grow with the wall clock", lambda: banner(c.app, "#age") != age,
                          pause=pilot.pause)
        for pane in ("errors", "p95"):
            assert "STALE" in " ".join(pane_rows(c.app, pane)), pane_rows(c.app, pane)
        # No engine soaks the phase: its clock stops with the engine.
        assert re.search(r"soak \S+", strip(c.app)).group() == soak


async def test_with_no_engine_the_status_line_says_what_would_happen_not_what_will(console, test_plan):
    c = console(test_plan(), faults=(Fault(metric="error_rate", phase=1, after=1, value=0.05, while_exposed=False),))
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        await c.tick(pilot, times=2)
        assert "→ rollback" in status(c.app)
        await gone(c, pilot)
        assert "→ rollback" not in status(c.app) and "would roll back" in status(c.app), status(c.app)


async def test_no_engine_over_a_finished_rollback_is_no_alarm(console, test_plan):
    c = console(test_plan())
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        await c.call(lambda: c.engine.rollback(ALICE, "p99 climbing"))
        await c.tick(pilot)
        await gone(c, pilot)
        # Nothing is exposed, and `warroom status` exits 5 (ROLLED BACK), not 9: the banner agrees.
        assert banner(c.app) == "ROLLED BACK"
        assert "NO ENGINE" not in screen_text(c.app).splitlines()[0]


# ------------------------------------------------------------------ 5. a source down


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_a_source_down_is_named_once_with_its_host_and_cause(console, test_plan, size):
    port = free_port()  # nothing listens: connection refused
    prom = {"type": "prometheus", "url": f"http://127.0.0.1:{port}", "timeout": "2s"}
    panes = [{"id": "errors", "title": "Error rate", "query": "sum(rate(errors[1m]))", "unit": "ratio", "breach": 0.01},
             {"id": "p95", "title": "Latency p95", "query": "histogram_quantile(0.95, x)", "unit": "seconds", "breach": 0.5},
             {"id": "p99", "title": "Latency p99", "query": "histogram_quantile(0.99, x)", "unit": "seconds", "breach": 1.0}]
    c = console(test_plan({"sources": {"prom": prom}, "panes": panes}))
    async with c.app.run_test(size=size) as pilot:
        await c.tick(pilot)
        top = "\n".join(screen_text(c.app).splitlines()[:2]) + "\n" + status(c.app)
        assert f"prom (127.0.0.1:{port})" in top and "connection refused" in top, top
        assert "Error rate, Latency p95" not in screen_text(c.app)


# ------------------------------------------------------------------ 7. after a rollback


async def test_the_rollback_panel_tells_when_flags_were_confirmed_and_one_line_per_retry_spell(console, tmp_path, monkeypatch):
    c, service = refusing_flag_api(tmp_path, console, monkeypatch)
    async with c.app.run_test(size=(120, 36)) as pilot:
        await c.tick(pilot, times=3)
        await rolling_back(c, pilot)  # three attempts fail
        with service.lock:
            service.refuse_disable = False
        await c.tick(pilot, times=2)
        await c.until(pilot, lambda: c.app.snapshot.state == State.ROLLED_BACK)
        back = c.app.snapshot.rollback
        assert back.confirmed_at > back.started_at + 1
        panel = rows_of(c.app, c.app.query_one(RollbackPanel))
        clock = lambda ts: __import__("time").strftime("%H:%M:%SZ", __import__("time").gmtime(ts))  # noqa: E731
        assert panel[0].strip() == f"ROLLED BACK at {clock(back.confirmed_at)}", panel
        assert panel[1].strip() == f"asked  {clock(back.started_at)} by alice", panel
        # Three failed attempts are one line of the journal, with their count.
        journal = rows_of(c.app, c.app.query_one(Timeline))
        tries = [row for row in journal if "attempt" in row and "failed" in row]
        assert len(tries) == 1 and "×3" in tries[0], journal


async def test_dry_run_steps_say_so_first_and_name_their_target_at_80_columns(console, test_plan):
    steps = [{"name": "Drain WebSocket connections", "run": ["kubectl", "scale", "deployment/ws", "--replicas=0"]},
             {"name": "Verify the service is healthy", "http": {"method": "GET", "url": "https://api.example.com/health"}}]
    c = console(test_plan({"rollback": {"steps": steps}}))
    async with c.app.run_test(size=(80, 24)) as pilot:
        await into_phase_one(c, pilot)
        await c.call(lambda: c.engine.rollback(ALICE, "p99 climbing"))
        await c.tick(pilot)
        panel = rows_of(c.app, c.app.query_one(RollbackPanel))
        runbook = [row for row in panel if "Drain" in row or "Verify" in row]
        assert len(runbook) == 2, panel
        for row in runbook:
            assert "dry run" in row and "✔" not in row, row  # nothing ran: no tick mark
    entries = [e.message for e in c.engine.store.entries() if e.kind == "rollback.step"]
    assert any("would call GET https://api.example.com/health" in m for m in entries), entries


# ------------------------------------------------------------------ 9. layout


async def test_at_120x36_the_journal_takes_the_free_rows_instead_of_cutting_lines(console):
    c = console()
    async with c.app.run_test(size=(120, 36)) as pilot:
        await c.tick(pilot, times=3)
        await c.call(lambda: c.engine.rollback(ALICE, "manual rollback from the console by alice, p99 climbing on the canary"))
        await c.tick(pilot)
        journal = rows_of(c.app, c.app.query_one(Timeline))
        assert journal[-1] == "" or not journal[-1].strip(), journal  # rows to spare…
        assert not any(row.rstrip().endswith("…") for row in journal), journal  # …so no line is cut


async def test_at_80_columns_gate_readings_who_ticked_and_the_rollout_name_stay_whole(console, tmp_path):
    gates = [{"name": "Connection success > 99%", "pane": "connection_success", "above": 0.99},
             {"name": "Error rate < 0.1%", "pane": "error_rate", "below": 0.001}]
    checklist = [{"text": "WebSocket servers provisioned and load balancers configured", "required": True}, "Docs"]
    phases = [{**p, "gates": gates, "checklist": checklist} if i == 0 else p for i, p in enumerate(one_flag_phases())]
    c = console(demo(tmp_path, phases=phases))
    async with c.app.run_test(size=(80, 24)) as pilot:
        await c.tick(pilot, times=2)
        await pilot.press("space")
        await c.until(pilot, lambda: c.app.snapshot.phase.checklist[0].ticked)
        shown = "\n".join(rows_of(c.app, c.app.query_one(Checklist)))
        for gate in c.app.snapshot.phase.gates[:2]:
            reading = f"{format_value(gate.value, gate.unit)} {'>' if gate.passed else '≤'} {format_value(gate.threshold, gate.unit)}"
            if gate.op == "below":
                reading = reading.replace(">", "<").replace("≤", "≥")
            assert reading in shown, (reading, shown)
        assert "✔ alice" in shown, shown
        await gone(c, pilot)
        assert "demo-realtime-features" in screen_text(c.app).splitlines()[0]


# ------------------------------------------------------------------ 10. smaller truths


async def test_the_engine_publishes_as_soon_as_a_step_up_ends(console, test_plan):
    c = console(test_plan())
    async with c.app.run_test(size=(120, 36)) as pilot:
        await c.tick(pilot)
        await c.call(lambda: c.engine.step_up(ALICE))
        # No tick: what a console opening now reads from the store is the step done.
        await until_async("a snapshot without the finished step in flight",
                          lambda: "an action is still in flight" not in c.app.client.snapshot().step_blockers,
                          timeout=10, pause=pilot.pause)


async def test_a_paused_or_read_only_console_still_says_what_blocks_the_next_step(console, test_plan, tmp_path):
    c = console(test_plan())
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        await c.call(lambda: c.engine.pause(ALICE, ""))
        await c.tick(pilot)
        line = status(c.app)
        assert "paused: paused by" not in line, line
        assert "soak" in line and "checklist" in line, line
    c.host.stop()
    ro = console(test_plan({"state": "read-only.sqlite", "flag_provider": {"provider": "local", "path": "read-only.json"}}),
                 readonly=True)
    async with ro.app.run_test(size=(120, 36)) as pilot:
        await ro.tick(pilot)
        await ro.call(lambda: ro.engine.step_up(ALICE))
        await ro.tick(pilot)
        assert "read-only" in status(ro.app) and "soak" in status(ro.app), status(ro.app)


async def test_a_guardrail_with_nothing_to_judge_says_so_in_the_zoom(console):
    c = console()
    async with c.app.run_test(size=(200, 60)) as pilot:
        await c.tick(pilot)
        await c.call(lambda: c.engine.rollback(ALICE, "before the first phase"))  # nobody on the new code
        await c.tick(pilot)
        c.app.push_screen(ZoomScreen("error_rate"))
        await pilot.pause()
        line = next(row for row in screen_text(c.app).splitlines() if "error-rate-vs-control" in row)
        assert "· ignored" not in line and "not judged" in line, line


async def test_help_calls_the_engine_the_driver(console, test_plan):
    c = console(test_plan())
    async with c.app.run_test(size=(120, 60)) as pilot:
        await c.tick(pilot)
        await pilot.press("question_mark")
        shown = screen_text(c.app)
        driver = next(row for row in shown.splitlines() if "driver" in row.split("  ")[0] or " driver " in row)
        assert "console" not in driver and "engine" in driver, driver


async def test_toggling_an_item_fast_ticks_then_unticks_never_unticks_twice(console, test_plan):
    c = console(test_plan())
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        await pilot.press("space")
        await c.until(pilot, lambda: c.app.snapshot.phase.checklist[0].ticked)
        checklist = c.app.query_one(Checklist)
        for _ in range(3):  # key repeat: three presses before any snapshot can come back
            checklist.action_tick_item()
        await c.until(pilot, lambda: len([k for k in c.kinds() if k.startswith("checklist.")]) == 4)
        await c.settle(pilot)
        assert [k for k in c.kinds() if k.startswith("checklist.")] == [
            "checklist.tick", "checklist.untick", "checklist.tick", "checklist.untick"]
        assert not c.app.snapshot.phase.checklist[0].ticked


async def test_keys_pressed_fast_reach_the_engine_in_the_order_pressed_when_the_store_is_slow(console, test_plan):
    """Each press's command went out on a thread of its own: with the store slow to take the
    first, the two pressed after it overtook it (tick, untick, tick reached the engine as untick,
    tick, tick). The store is the real SQLite file; only its first write is held back, as a busy
    disk or a locked database would."""
    c = console(test_plan())
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        store = c.app.client.store
        real_send, released, landed = store.send_command, threading.Event(), []
        slow = [True]  # the store is slow once: for the first command to reach it (popped by one thread only)

        def send_command(verb, args, actor):
            try:
                slow.pop()
            except IndexError:
                pass
            else:
                released.wait(DEADLINE)
            command_id = real_send(verb, args, actor)
            landed.append(args["undo"])
            return command_id

        store.send_command = send_command
        checklist = c.app.query_one(Checklist)
        for _ in range(3):
            checklist.action_tick_item()
        # Until the two pressed after the first are in the store before it (the race) or wait their turn.
        await c.until(pilot, lambda: len(landed) == 2 or c.app.sending.in_line == 2, "the later presses queued or waiting")
        released.set()
        await c.answered(pilot)
        assert landed == [False, True, False]  # tick, untick, tick: as pressed
        assert [k for k in c.kinds() if k.startswith("checklist.")] == ["checklist.tick", "checklist.untick", "checklist.tick"]


async def test_a_rollback_pressed_after_a_command_whose_write_hangs_reaches_the_engine_first(console, test_plan):
    """A command whose hand-over hangs (SQLite busy behind another writer, a PostgreSQL that stalls)
    held every command pressed after it, the rollback too: going back waited on a checklist tick.
    The tick's write is held on its way into the real SQLite file; the rollback pressed after it
    goes on its own way and the engine runs it while the tick is still held."""
    c = console(test_plan())
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        store = c.app.client.store
        real_send, underway, released = store.send_command, threading.Event(), threading.Event()

        def send_command(verb, args, actor):
            if verb == Verb.TICK:  # the tick's write hangs until the test lets it go; nothing else's
                underway.set()
                released.wait(DEADLINE)
            return real_send(verb, args, actor)

        store.send_command = send_command
        try:
            c.app.query_one(Checklist).action_tick_item()
            await until_async("the tick's write under way", underway.is_set, pause=pilot.pause)
            await pilot.press("R")
            await c.until(pilot, lambda: Kind.ROLLBACK_INTENT in c.kinds(), "the engine running the rollback")
            assert not released.is_set() and "checklist.tick" not in c.kinds()
        finally:
            released.set()  # the tick goes in after it (or the test ends): nothing is left hanging
        await c.answered(pilot)
        kinds = c.kinds()
        assert all(kinds.index(Kind.ROLLBACK_INTENT) < i for i, k in enumerate(kinds) if k.startswith("checklist.")), kinds
