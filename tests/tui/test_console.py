"""Every key of the console, driving the real engine on the demo and the suite's small plan."""

from __future__ import annotations

import io
import json
import os
import pwd

import yaml
from rich.cells import cell_len
from rich.console import Console as RichConsole
from textual.command import CommandPalette
from textual.geometry import Size
from textual.widgets import Input, Static

from tests.conftest import ALICE, BASE_PLAN
from tests.support.helpers import free_port
from tests.tui.conftest import palette_text, screen_text
from tests.tui.test_glance import rows_of
from warroom import local_client
from warroom.core.clock import RealClock
from warroom.core.identity import Actor
from warroom.core.snapshot import State
from warroom.core.units import format_value
from warroom.reports.scorecard import ScoreCard
from warroom.tui.keymap import ACTIONS, BY_ID
from warroom.tui.screens.confirm import ConfirmDialog
from warroom.tui.screens.force_reason import ForceReason
from warroom.tui.screens.help import HelpScreen
from warroom.tui.screens.score_card import ScoreCardScreen
from warroom.tui.screens.step_dialog import StepDialog
from warroom.tui.widgets.banner import Banner
from warroom.tui.widgets.checklist import Checklist
from warroom.tui.widgets.flags_table import FlagsTable
from warroom.tui.widgets.keys_bar import KeysBar
from warroom.tui.widgets.metric_pane import MetricPane
from warroom.tui.widgets.status_line import StatusLine


def banner_state(app) -> str:
    return app.query_one(Banner).shown("state")


def strip(app) -> str:
    return app.query_one(Banner).shown("strip")


def rendered(renderable) -> str:
    out = RichConsole(width=100, record=True, file=io.StringIO())
    out.print(renderable)
    return out.export_text()


def flags_on_disk(console) -> dict:
    return json.loads(console.engine.provider.path.read_text())["flags"]


def by_alice(console, kind: str) -> list:
    return [e for e in console.engine.store.entries() if e.kind == kind and e.data["actor"]["user"] == ALICE.user]


async def into_phase_one(c, pilot) -> None:
    """The small plan steps up by hand: tick, step up, and wait for the screen to show it."""
    await c.tick(pilot)
    await c.call(lambda: c.engine.step_up(ALICE))
    await c.tick(pilot)
    assert c.app.snapshot.phase.index == 1


# ------------------------------------------------------------------ rollback


async def test_R_rolls_back_at_once_and_the_flags_file_is_really_off(console):
    c = console()  # the built-in demo: automatic step-up into phase 1 on the first tick
    async with c.app.run_test(size=(120, 36)) as pilot:
        await c.tick(pilot, times=3)
        assert c.app.snapshot.phase.index == 1 and flags_on_disk(c)["realtime-features"]["enabled"]
        await pilot.press("R")
        # Within the same frame, before the engine thread has answered, the banner says so.
        assert banner_state(c.app) in ("ROLLBACK REQUESTED", "ROLLING BACK", "ROLLED BACK")
        await c.until(pilot, lambda: c.app.snapshot.state == State.ROLLED_BACK and c.app.snapshot.action is None)
        assert banner_state(c.app) == "ROLLED BACK"
        assert "[exposure 0% ⟲ rolled back] from 1/5 Beta 5%" in strip(c.app)
        assert all(not f["enabled"] for f in flags_on_disk(c).values())
        intent = by_alice(c, "rollback.intent")
        assert len(intent) == 1 and "manual rollback from the console by alice" in intent[0].message
        assert "rollback.confirmed" in c.kinds() and "rollback.outcome" in c.kinds()
        # The footer now offers what can be done next (retry), not a struck-through rollback key;
        # pressing R anyway changes nothing.
        hints = [h.binding_id for h in c.app.query_one(KeysBar).hints]
        assert "rollback" not in hints and hints[0] == "retry"
        await pilot.press("R")
        await c.until(pilot, lambda: any("already rolled back" in n for n in c.notices))
        assert len(by_alice(c, "rollback.intent")) == 1


def flag_api_down(console, test_plan):
    """A console whose flag API is down: a rollback keeps retrying (it never gives up), so it stays in flight."""
    return console(test_plan({"flag_provider": {"provider": "http", "url": f"http://127.0.0.1:{free_port()}"}}), clock=RealClock())


async def roll_back(c, pilot) -> None:
    await c.tick(pilot)
    await pilot.press("R")
    await c.until(pilot, lambda: c.app.snapshot.state == State.ROLLING_BACK)


async def test_quit_asks_while_a_rollback_is_in_flight_only_when_the_engine_ends_with_the_console(console, test_plan):
    c = flag_api_down(console, test_plan)
    async with c.app.run_test() as pilot:
        await roll_back(c, pilot)
        assert banner_state(c.app).startswith("ROLLING BACK")
        # Every failed attempt is on screen with its reason, in the status line and the journal.
        await c.until(pilot, lambda: (c.app.snapshot.action.attempt or 0) >= 2)
        status = str(c.app.query_one(StatusLine).render())
        assert status.startswith("ROLLING BACK: feature off — attempt ")
        assert status.endswith(" failed: feature: cannot reach 127.0.0.1: ConnectError")
        journal = [e.message for e in c.app.snapshot.journal]
        assert "rollback attempt 2 on feature failed: cannot reach 127.0.0.1: ConnectError" in journal
        # The demo's (or a drill's) engine is this console's child and ends with it: ask.
        c.app.engine_ends_with_console = True
        await pilot.press("q")
        assert isinstance(c.app.screen, ConfirmDialog)
        assert c.app.focused.id == "cancel"
        await pilot.press("enter")  # Stay
        assert not isinstance(c.app.screen, ConfirmDialog) and c.app.is_running
        await pilot.press("ctrl+q")  # Textual's own quit key asks too
        assert isinstance(c.app.screen, ConfirmDialog)
        await pilot.press("escape")
        assert not isinstance(c.app.screen, ConfirmDialog) and c.app.is_running
        await pilot.press("q", "tab", "enter")  # Quit anyway
        await c.until(pilot, lambda: not c.app.is_running)
    assert c.app.return_code == 0


async def test_q_quits_at_once_during_a_rollback_when_an_engine_of_its_own_finishes_it(console, test_plan):
    c = flag_api_down(console, test_plan)
    async with c.app.run_test() as pilot:
        await roll_back(c, pilot)
        await pilot.press("q")
        await c.until(pilot, lambda: not c.app.is_running)
    assert c.app.return_code == 0


async def test_q_quits_at_once_when_nothing_is_in_flight(console, test_plan):
    c = console(test_plan())
    async with c.app.run_test() as pilot:
        await c.tick(pilot)
        await pilot.press("q")
        await c.until(pilot, lambda: not c.app.is_running)


# ------------------------------------------------------------------ step up


async def test_step_dialog_starts_on_cancel_then_confirm_steps_up(console, test_plan):
    c = console(test_plan())
    async with c.app.run_test(size=(120, 36)) as pilot:
        await c.tick(pilot)  # PENDING: nothing blocks entering phase 1
        await pilot.press("s")
        assert isinstance(c.app.screen, StepDialog)
        assert c.app.focused.id == "cancel"
        body = str(c.app.screen.query_one("#body").render())
        assert "phase 1/3 Canary 5%: feature: absent → 5%" in body
        await pilot.press("enter")  # Enter on the initial focus cancels: the safe default, and says so
        assert not isinstance(c.app.screen, StepDialog)
        assert c.notices[-1] == "step up cancelled: nothing changed"
        await c.tick(pilot)
        assert c.app.snapshot.state == State.PENDING and "step.intent" not in c.kinds()

        await pilot.press("s", "tab")
        assert c.app.focused.id == "confirm" and str(c.app.focused.label) == "Step up"
        await pilot.press("enter")
        await c.until(pilot, lambda: c.app.snapshot.phase is not None and c.app.snapshot.phase.index == 1)
        assert flags_on_disk(c)["feature"]["rollout_percentage"] == 5.0
        assert len(by_alice(c, "step.intent")) == 1


async def test_blocked_step_in_production_is_forced_with_a_typed_reason(console, test_plan):
    c = console(test_plan({"rollout": {"name": "prod-launch", "environment": "production"}}))
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        assert "PRODUCTION" in c.app.query_one(Banner).shown("env")
        await pilot.press("s")
        await pilot.pause()
        dialog = c.app.screen
        assert isinstance(dialog, StepDialog) and dialog.has_class("-production")
        body = str(dialog.query_one("#body").render())
        assert "PRODUCTION" in body and "soak" in body and "FORCED" in body and "5% → 50%" in body
        await pilot.press("tab")
        assert str(c.app.focused.label) == "Force step up…"
        await pilot.press("enter")
        assert isinstance(c.app.screen, ForceReason)
        await pilot.press("enter")  # an empty reason is refused on the spot
        assert isinstance(c.app.screen, ForceReason) and any("type the reason" in n for n in c.notices)
        # Typed letters go into the reason, never to the console's keys (R, q, s, p, a, t).
        await pilot.press(*"Rq spat: IC approved")
        assert c.app.screen.query_one(Input).value == "Rq spat: IC approved"
        await pilot.press("enter")
        await c.until(pilot, lambda: c.app.snapshot.phase.index == 2)
        forced = by_alice(c, "step.forced")
        assert len(forced) == 1 and "Rq spat: IC approved" in forced[0].message and "soak" in forced[0].message
        assert "rollback.intent" not in c.kinds() and c.app.is_running


async def test_step_that_not_even_force_allows_is_refused_without_a_dialog(console, test_plan):
    c = console(test_plan())
    async with c.app.run_test() as pilot:
        await into_phase_one(c, pilot)
        await pilot.press("p")
        await c.until(pilot, lambda: c.app.snapshot.state == State.PAUSED)
        await pilot.press("s")
        assert not isinstance(c.app.screen, StepDialog)
        await c.until(pilot, lambda: any("state is PAUSED" in n for n in c.notices))


async def test_escape_closes_the_step_dialog(console, test_plan):
    c = console(test_plan())
    async with c.app.run_test() as pilot:
        await c.tick(pilot)
        await pilot.press("s", "escape")
        assert not isinstance(c.app.screen, StepDialog)
        assert "step.intent" not in c.kinds()


# ------------------------------------------------------------------ pause, checklist, drift


async def test_p_pauses_and_resumes(console, test_plan):
    c = console(test_plan())
    async with c.app.run_test() as pilot:
        await into_phase_one(c, pilot)
        await pilot.press("p")
        await c.until(pilot, lambda: c.app.snapshot.state == State.PAUSED)
        assert banner_state(c.app) == "PAUSED"
        assert [h.label for h in c.app.query_one(KeysBar).hints if h.binding_id == "pause_resume"] == ["resume"]
        await pilot.press("p")
        await c.until(pilot, lambda: c.app.snapshot.state == State.RUNNING)
        assert len(by_alice(c, "pause")) == 1 and len(by_alice(c, "resume")) == 1


async def test_p_is_journaled_and_shown_as_the_kernel_names_the_sender_not_as_the_console_says(console, test_plan):
    """Issue 24: on SQLite the console's word ("alice") is only a declaration. Over the engine's local socket
    the kernel names the sender, and the console's journal shows that account; a command queued in the store
    with no engine here to take it is shown as declared."""
    me = pwd.getpwuid(os.getuid()).pw_name
    c = console(test_plan())
    async with c.app.run_test(size=(160, 40)) as pilot:
        await into_phase_one(c, pilot)
        await pilot.press("p")  # no local socket yet: only the store takes it, as alice said
        await c.until(pilot, lambda: c.app.snapshot.state == State.PAUSED)
        await c.until(pilot, lambda: "alice? PAUSED: paused by alice (declared, not proven)" in screen_text(c.app), "the name shown declared")
        c.host.listen_locally()
        await c.until(pilot, lambda: local_client.ping(c.engine.store.ref) is not None, "the engine's local socket")
        await pilot.press("p")
        await c.until(pilot, lambda: c.app.snapshot.state == State.RUNNING)
        [resume] = [e for e in c.engine.store.entries() if e.kind == "resume"]
        assert resume.data["actor"]["user"] == me and resume.data["actor"]["proof"].startswith(f"kernel: uid {os.getuid()} ({me})")
        await c.until(pilot, lambda: f"{me[:6]:<6} resumed by {me}" in screen_text(c.app), "the proven account on the console")


async def test_space_and_enter_tick_the_selected_item(console, test_plan):
    c = console(test_plan())
    async with c.app.run_test() as pilot:
        await into_phase_one(c, pilot)
        items = lambda: c.app.snapshot.phase.checklist  # noqa: E731
        await pilot.press("down", "space")  # the second item: Support briefed
        await c.until(pilot, lambda: items()[1].ticked)
        assert not items()[0].ticked and items()[1].by.startswith("alice")
        await pilot.press("up", "enter")
        await c.until(pilot, lambda: items()[0].ticked)
        await pilot.press("enter")  # again: unticks
        await c.until(pilot, lambda: not items()[0].ticked)
        assert [e.kind for e in by_alice(c, "checklist.tick")] == ["checklist.tick"] * 2
        assert len(by_alice(c, "checklist.untick")) == 1


async def test_drift_is_shown_and_a_acknowledges_it(console, test_plan):
    c = console(test_plan())
    async with c.app.run_test() as pilot:
        await into_phase_one(c, pilot)
        await pilot.press("a")
        await c.until(pilot, lambda: any("no flag drift" in n for n in c.notices))
        # Someone changes the flag outside warroom.
        data = json.loads(c.engine.provider.path.read_text())
        data["flags"]["feature"]["rollout_percentage"] = 30.0
        c.engine.provider.path.write_text(json.dumps(data))
        await c.tick(pilot, seconds=5)
        assert c.app.snapshot.drift and c.app.snapshot.state == State.PAUSED
        assert "feature  5%       30%       DRIFT" in rendered(c.app.query_one(FlagsTable).render())
        assert "DRIFT" in str(c.app.query_one(StatusLine).render())
        await pilot.press("a")
        await c.until(pilot, lambda: not c.app.snapshot.drift and c.app.snapshot.state == State.RUNNING)
        assert len(by_alice(c, "drift.ack")) == 1


# ------------------------------------------------------------------ read-only


async def test_readonly_sees_everything_and_refuses_every_action(console, test_plan, tmp_path):
    plan = test_plan()
    writer = console(plan)
    async with writer.app.run_test() as pilot:
        await into_phase_one(writer, pilot)

    c = console(plan, readonly=True)
    async with c.app.run_test(size=(120, 36)) as pilot:
        await c.tick(pilot)
        before = c.kinds()
        assert "[RO]" in c.app.query_one(Banner).shown("mode")
        assert c.app.snapshot.phase.index == 1 and c.app.snapshot.state == State.RUNNING
        assert all(not h.enabled for h in c.app.query_one(KeysBar).hints if h.binding_id in
                   ("step_up", "pause_resume", "rollback", "checklist.tick", "ack_drift"))
        for key in ("s", "p", "R", "space", "enter", "a"):
            await pilot.press(key)
            assert not isinstance(c.app.screen, StepDialog)
        await c.until(pilot, lambda: sum("read-only" in n for n in c.notices) >= 6)
        await c.tick(pilot)
        assert c.kinds() == before and c.app.snapshot.state == State.RUNNING
        assert flags_on_disk(c)["feature"]["rollout_percentage"] == 5.0


async def test_banner_says_INSECURE_only_while_a_source_skips_tls_verification(console, test_plan):
    sim = {"type": "simulator", "seed": 1, "flag": "feature", "noise": 0}
    prom = {"type": "prometheus", "url": f"https://127.0.0.1:{free_port()}"}
    for tls, shown in (({}, False), ({"ca_bundle": __file__}, False), ({"insecure_skip_verify": True}, True)):
        c = console(test_plan({"sources": {"sim": sim, "prom": {**prom, "tls": tls}}}))
        async with c.app.run_test(size=(120, 36)) as pilot:
            await c.tick(pilot)
            assert ("INSECURE" in screen_text(c.app).splitlines()[0]) is shown, tls


# ------------------------------------------------------------------ help, palette, themes, keys


async def test_help_lists_every_binding_with_its_id(console, test_plan):
    c = console(test_plan())
    async with c.app.run_test(size=(120, 60)) as pilot:
        await c.tick(pilot)
        await pilot.press("question_mark")
        assert isinstance(c.app.screen, HelpScreen)
        ids = {row.binding_id for row in c.app.screen.rows}
        assert ids == {a.id for a in ACTIONS if a.keys} == {
            "step_up", "pause_resume", "rollback", "retry", "ack_drift", "help", "palette", "theme", "quit", "zoom",
            "pane.zoom", "checklist.up", "checklist.down", "checklist.tick", "stop_trying", "approve"}
        shown = screen_text(c.app)
        for word in ("driver", "soak", "gate", "ack", "drift", "read back", "≤1.00% · last 2m", "absent"):
            assert word in shown, word
        await pilot.press("escape")
        assert not isinstance(c.app.screen, HelpScreen)


async def test_palette_runs_console_actions_by_name(console, test_plan):
    c = console(test_plan())
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        await pilot.press("colon")
        assert isinstance(c.app.screen, CommandPalette)
        await pilot.press(*"roll back now")
        await c.until(pilot, lambda: palette_text(c.app).strip().startswith("Roll back now"), "the palette to find the action")
        await pilot.press("enter")
        await c.until(pilot, lambda: c.app.snapshot.state == State.ROLLED_BACK)
        assert len(by_alice(c, "rollback.intent")) == 1


async def test_the_console_shows_what_is_awaited_and_A_approves_it(console, test_plan):
    me = pwd.getpwuid(os.getuid()).pw_name  # who the kernel says runs this console
    phases = yaml.safe_load(BASE_PLAN)["phases"]
    phases[0]["approvals"] = {"roles": {"security": 1}, "timeout": "5m", "on_timeout": "hold"}
    c = console(test_plan({"roles": {"security": {"members": ["carol", me]}}, "phases": phases}))
    c.host.listen_locally()
    async with c.app.run_test(size=(120, 36)) as pilot:
        await c.tick(pilot)
        said = await c.call(lambda: c.engine.step_up(Actor(user="carol")))
        assert said.startswith(f"awaiting security ({me}) 05:00 → on timeout: hold")
        await c.tick(pilot, seconds=48)
        await c.until(pilot, lambda: f"awaiting security ({me}) 04:1" in screen_text(c.app))
        assert "→ on timeout: hold" in screen_text(c.app)
        await pilot.press("A")  # over the engine's local socket: the console's word for who it is counts for nothing
        await c.until(pilot, lambda: c.engine.phase_index == 1)
        [given] = [e for e in c.engine.store.entries() if e.kind == "approval.given"]
        assert given.data["actor"]["user"] == me and given.data["actor"]["proof"].startswith(f"kernel: uid {os.getuid()} ({me})")
        assert given.data["note"] == "from the console" and given.data["roles"] == ["security"]


async def test_t_cycles_themes_and_theme_option_is_honoured(console, test_plan):
    c = console(test_plan(), theme="warroom-light")
    async with c.app.run_test() as pilot:
        assert c.app.theme == "warroom-light"
        seen = set()
        for _ in range(3):
            await pilot.press("t")
            seen.add(c.app.theme)
        assert seen == {"warroom-dark", "warroom-light", "warroom-high-contrast"}


async def test_unknown_theme_falls_back_with_a_notice(console, test_plan):
    c = console(test_plan(), theme="no-such-theme")
    async with c.app.run_test():
        assert c.app.theme == "warroom-dark"
        assert any("unknown theme 'no-such-theme'" in n for n in c.notices)


async def test_plan_keys_remap_bindings_by_id(console, test_plan):
    c = console(test_plan({"keys": {"rollback": "x", "bogus": "z"}}))
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        assert any("unknown binding id(s) bogus" in n for n in c.notices)
        assert next(h for h in c.app.query_one(KeysBar).hints if h.binding_id == "rollback").key == "x"
        await pilot.press("R")
        await c.answered(pilot)  # had R sent a rollback, the engine would have run it by now
        assert c.app.snapshot.state == State.RUNNING and "rollback.intent" not in c.kinds()  # R is no longer the rollback key
        await pilot.press("x")
        await c.until(pilot, lambda: c.app.snapshot.state == State.ROLLED_BACK)


def _card(title: str, passed: bool) -> ScoreCard:
    return ScoreCard(scenario="s", title=title, expected="rollback within 30s", passed=passed, incident_at=5.0,
                     incident="error-rate breach", time_to_detect=10.0, time_to_mitigate=10.0, rollback_latency=0.0,
                     failed_attempts=0, actions=(), mistakes=(), findings=() if passed else ("too late",),
                     final_state="ROLLED BACK", duration=20.0)


async def test_a_drill_score_card_pops_up_when_journaled_and_the_palette_shows_it_again(console):
    c = console()
    # A past drill's card in the same journal is not news: it does not pop up on opening.
    c.engine.record("drill.score", "drill s FAIL: too late", {"card": _card("Last week's drill", False).to_json()})
    async with c.app.run_test(size=(120, 36)) as pilot:
        await c.tick(pilot)
        assert not isinstance(c.app.screen, ScoreCardScreen)
        assert c.app.score_card.title == "Last week's drill"

        async def scored():
            c.engine.record("drill.score", "drill s PASS", {"card": _card("Today's drill", True).to_json()})
            return c.engine.publish()

        await c.call(scored)
        await c.until(pilot, lambda: isinstance(c.app.screen, ScoreCardScreen))
        shown = " ".join(str(w.render()) for w in c.app.screen.query(Static))
        assert "DRILL SCORE: Today's drill [s] — PASS" in shown and "time to detect:    10.0s" in shown
        await pilot.press("escape")
        assert not isinstance(c.app.screen, ScoreCardScreen)
        c.app.run_console_action(BY_ID["score_card"])
        await pilot.pause()
        assert isinstance(c.app.screen, ScoreCardScreen) and c.app.screen.card.title == "Today's drill"


# ------------------------------------------------------------------ what the screen says


async def test_phase_strip_says_where_the_launch_stands_and_the_step_dialog_lists_only_real_changes(console, test_plan):
    gate = {"name": "errors low", "pane": "errors", "below": 0.001}  # the name does not say the threshold
    phases = [
        {"name": "Canary", "flags": {"feature": 5}, "hold": "1m",
         "checklist": [{"text": "Dashboards", "required": True}, {"text": "Pager", "required": True}, "Docs"]},
        {"name": "Wide", "flags": {"feature": 50, "extra": 100}, "hold": "0s", "gates": [gate]},
        {"name": "Full 100%", "flags": {"feature": 100, "extra": 100}, "hold": "0s"},
    ]
    c = console(test_plan({"phases": phases}))
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        assert strip(c.app).startswith("1/3 Canary  [5% ◉ soak 1s/1m ")
        assert strip(c.app).endswith(" required 0/2] → 50%/100% → 100")
        await pilot.press("space")
        await c.until(pilot, lambda: "required 1/2]" in strip(c.app))
        assert "* required 1/2" in rendered(c.app.query_one(Checklist).render())
        await c.call(lambda: c.engine.step_up(ALICE, force=True, reason="test"))
        await c.tick(pilot)
        assert strip(c.app).startswith("2/3 Wide  5% ✔ → [50%/100% ◉ soak ✔ 1s gates ")
        assert strip(c.app).endswith("] → 100")
        shown = c.app.snapshot.phase.gates[0]
        relation = "<" if shown.passed else "≥"
        line = f"gate errors low  {format_value(shown.value, 'ratio')} {relation} 0.10%"
        assert line in rendered(c.app.query_one(Checklist).render())
        await pilot.press("s")
        body = str(c.app.screen.query_one("#body").render())
        assert f"errors low: {format_value(shown.value, 'ratio')} {relation} 0.10%" in body
        # `extra` is at 100% already: a step that does not change it does not list it.
        assert "phase 3/3 Full 100%: feature: 50% → 100%\n" in body and "extra" not in body
        await pilot.press("escape")


async def test_80_columns_keep_pane_titles_and_whole_key_hints(console):
    c = console()  # the demo: eight panes, four to a row at 80 columns
    async with c.app.run_test(size=(80, 24)) as pilot:
        await c.tick(pilot, times=2)
        for pane in c.app.query(MetricPane):
            title, chart, _ = rows_of(c.app, pane)
            # "Connection success" whole (not "Connection"); longer titles get at least as much room.
            room = min(cell_len(pane.pane.title), len("Connection success"))
            assert title.strip().rstrip("…")[:room] == pane.pane.title[:room] or title.strip().endswith("…") and \
                len(title.strip()) >= room, title
            # The value by its sparkline, the title on a line of its own.
            assert chart.strip().startswith(format_value(pane.pane.value, pane.pane.unit) + " "), chart
        bar = c.app.query_one(KeysBar)
        text = bar.render().plain
        assert "…" not in text and cell_len(text.rstrip()) <= bar.content_region.width
        shown = [h for h in bar.hints if f"{h.key} {h.label}" in text.replace(" R  ", " R ")]
        assert shown == list(bar.hints[:len(shown)])  # whole hints, the least important dropped first
        assert {"help", "quit"} <= {h.label for h in shown}
    wide = console()
    async with wide.app.run_test(size=(120, 36)) as pilot:
        await wide.tick(pilot)
        pane = wide.app.query(MetricPane).first()
        assert rows_of(wide.app, pane)[0].endswith(format_value(pane.pane.value, pane.pane.unit))  # beside the title
        bar = wide.app.query_one(KeysBar)
        assert all(f"{h.key} {h.label}" in bar.render().plain.replace(" R  ", " R ") for h in bar.hints)


async def test_panes_and_banner_repainted_at_a_new_width_before_they_hear_of_it_still_fit(console):
    """A relayout resizes and repaints the widgets before each handles its Resize event: lines drawn
    for the old, wider pane wrapped in the narrower one, and the chart's line read `0.041%` with its
    bars on the line below (CI: test_80_columns_keep_pane_titles_and_whole_key_hints)."""
    c = console()
    async with c.app.run_test(size=(110, 24)) as pilot:
        await c.tick(pilot, times=2)
        # The terminal narrows to 80 columns: the screen lays out and paints at once, as it does at its
        # next refresh, while the widgets' Resize events still wait in their queues.
        c.app.screen._refresh_layout(Size(80, 24))
        for pane in c.app.query(MetricPane):
            title, chart, _ = rows_of(c.app, pane)
            assert title.strip().startswith(pane.pane.title[:8]), title
            assert chart.strip().startswith(format_value(pane.pane.value, pane.pane.unit) + " "), chart
        banner = rows_of(c.app, c.app.query_one(Banner))
        assert "RUNNING" in banner[0] and "engine: alice@bastion" in banner[1], banner


# ------------------------------------------------------------------ no engine


async def test_no_engine_is_said_loudly_and_panes_only_say_what_would_happen(console, test_plan):
    from warroom.plan.faults import Fault

    c = console(test_plan(), faults=(Fault(metric="error_rate", phase=1, after=1, value=0.05, while_exposed=False),))
    async with c.app.run_test(size=(120, 36)) as pilot:
        await into_phase_one(c, pilot)
        await c.tick(pilot, times=2)  # the 30 s window of the rollback guardrail is filling
        assert "ROLLBACK in" in rows_of(c.app, c.app.query_one(MetricPane))[-1]
        assert c.host.stop()  # the engine is gone, with the launch in flight
        await c.until(pilot, lambda: c.app.snapshot.engine is not None and not c.app.snapshot.engine.alive)
        assert banner_state(c.app) == "NO ENGINE — guardrails NOT enforced"
        assert "-level-bad" in c.app.query_one(Banner).classes
        assert c.app.query_one(Banner).shown("driver") == "engine: NONE"
        assert rows_of(c.app, c.app.query_one(MetricPane))[-1].strip().startswith("WOULD roll back")
        # A console that cannot start an engine (the demo's ended with it) queues the rollback and says how to start one.
        await pilot.press("R")
        await c.until(pilot, lambda: any("the rollback is queued for the next engine; start one now with `warroom rollback PLAN`" in n
                                         for n in c.notices))
        # One that can, but whose engine does not start, says why; nothing runs the rollback.
        c.app.start_engine = lambda _rollback: "the engine did not start; see its log: state.engine.log"
        await pilot.press("R")
        await c.until(pilot, lambda: c.notices[-1] == "the engine did not start; see its log: state.engine.log")
        assert "rollback.intent" not in c.kinds()


# ------------------------------------------------------------------ freezes


async def test_a_freeze_shows_on_the_banner_refuses_s_and_R_still_rolls_back(console, test_plan):
    c = console(test_plan())
    async with c.app.run_test() as pilot:
        await into_phase_one(c, pilot)
        now = c.engine.clock.now()
        c.engine.store.add_freeze("Black Friday", None, "carol", now)
        await c.tick(pilot)
        banner = c.app.query_one(Banner)
        await c.until(pilot, lambda: banner.shown("freeze") == "FREEZE until lifted (Black Friday) · rollback allowed")
        assert "FREEZE until lifted (Black Friday)" in banner.render().plain
        await pilot.press("s")
        assert not isinstance(c.app.screen, StepDialog)  # not even a forced step up passes a freeze
        await c.until(pilot, lambda: any("Black Friday" in n for n in c.notices))
        await pilot.press("R")
        await c.until(pilot, lambda: c.app.snapshot.state == State.ROLLED_BACK)
        assert flags_on_disk(c)["feature"]["enabled"] is False
