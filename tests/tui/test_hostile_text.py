"""Plan and server text is data on the console: never markup, never raw control characters.

A plan full of markup-looking names (`exp[/]v2` crashed the console at start) and a real
loopback HTTP server posing as Prometheus whose error carries escape sequences (it once
retitled the terminal to "pwned"): every screen the console can show is read cell by cell.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from tests.conftest import ALICE, BASE_PLAN, write_plan
from tests.tui.conftest import palette_text, screen_text
from warroom.core.snapshot import State
from warroom.reports.scorecard import ScoreCard
from warroom.tui.screens.confirm import ConfirmDialog
from warroom.tui.screens.force_reason import ForceReason
from warroom.tui.screens.help import HelpScreen
from warroom.tui.screens.score_card import ScoreCardScreen
from warroom.tui.screens.step_dialog import StepDialog
from warroom.tui.screens.zoom import ZoomScreen

WARROOM = str(Path(sys.executable).with_name("warroom"))
# OSC retitles the terminal, CSI 2J clears it, U+202E reverses what follows.
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\u202e"
PROMETHEUS_ERROR = {"status": "error", "errorType": "bad_data", "error": f"{ESCAPES}[bold]boom[/bold] at 1:5"}
SHOWN_ERROR = "Prometheus rejected the query (bad_data): [bold]boom[/bold] at 1:5"


def hostile_plan(prometheus_url: str) -> dict:
    plan = yaml.safe_load(BASE_PLAN)
    plan["rollout"] = {"name": "launch [bold red]NOW[/]", "environment": "staging"}
    plan["sources"]["prom"] = {"type": "prometheus", "url": prometheus_url, "timeout": "1s"}
    plan["panes"].append({"id": "bad", "title": "Errors [PROD] [/]", "source": "prom", "query": "sum(rate(x[5m]))", "unit": "ratio"})
    plan["phases"] = [
        {"name": "Beta [5%]", "flags": {"feature": 5, "exp[/]v2": 5}, "hold": "1m",
         "gates": [{"name": "[b]bold gate[/b]", "pane": "bad", "below": 0.01}],
         "checklist": [{"text": "Check [PROD] dashboards", "required": True}, "[link=http://x]click[/link]"]},
        {"name": "Full", "flags": {"feature": 100, "exp[/]v2": 100}, "hold": "0s"},
    ]
    return plan


def prometheus(http_server):
    return http_server(lambda handler: (400, "application/json", json.dumps(PROMETHEUS_ERROR).encode()))


def card() -> ScoreCard:
    return ScoreCard(scenario="s", title=f"{ESCAPES}[red]Drill[/red] of [PROD]", expected="rollback", passed=True,
                     incident_at=1.0, incident="x", time_to_detect=1.0, time_to_mitigate=1.0, rollback_latency=0.0,
                     failed_attempts=0, actions=(), mistakes=(), findings=(), final_state="ROLLED BACK", duration=2.0)


async def test_no_screen_shows_markup_or_control_characters_from_plan_or_server(console, test_plan, http_server):
    plan = hostile_plan(prometheus(http_server).url)
    c = console(test_plan({k: plan[k] for k in ("rollout", "sources", "panes", "phases")}))
    async with c.app.run_test(size=(200, 60)) as pilot:
        await c.tick(pilot)
        await c.call(lambda: c.engine.step_up(ALICE))
        await c.tick(pilot, times=2)
        shown = screen_text(c.app)  # fails on any control character
        for text in ("launch [bold red]NOW[/]", "exp[/]v2", "Check [PROD] dashboards", "[link=http://x]click[/link]",
                     "Errors [PROD] [/]", "[b]bold gate[/b]", "Beta [5%]", f"source prom: {SHOWN_ERROR}"):
            assert text in shown, text

        c.app.notify(f"ticked: Check [PROD] dashboards {ESCAPES}", title="[b]t[/b]")  # markup and escapes in a notice
        await pilot.pause()
        assert "[b]t[/b]: ticked: Check [PROD] dashboards" in screen_text(c.app)

        await pilot.press("s")  # the step dialog: plan text in gates, blockers and changes
        assert isinstance(c.app.screen, StepDialog)
        shown = screen_text(c.app)
        assert "exp[/]v2: 5% → 100%" in shown
        assert "[b]bold gate[/b]" in shown and "Check [PROD] dashboards" in shown
        await pilot.press("tab", "enter")
        assert isinstance(c.app.screen, ForceReason) and "Check [PROD] dashboards" in screen_text(c.app)
        await pilot.press("escape")

        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(c.app.screen, HelpScreen) and "Check [PROD]" in screen_text(c.app)  # wrapped, as text
        await pilot.press("escape")

        await pilot.press("colon", *"step")
        # The palette's help line is markup: escaped, the plan's text shows as written.
        await c.until(pilot, lambda: "Check [PROD]" in palette_text(c.app), "the palette's help line")  # wrapped there
        await pilot.press("escape")

        await pilot.press("z")  # the pane with no data is the most alarming: its server error in full
        assert isinstance(c.app.screen, ZoomScreen) and c.app.screen.pane_id == "bad"
        assert SHOWN_ERROR in screen_text(c.app)
        await pilot.press("escape")

        async def scored():
            c.engine.record("drill.score", "drill scored", {"card": card().to_json()})
            return c.engine.publish()

        await c.call(scored)
        await c.until(pilot, lambda: isinstance(c.app.screen, ScoreCardScreen))
        assert "[red]Drill[/red] of [PROD]" in screen_text(c.app)
        await pilot.press("escape")

        await c.call(lambda: c.engine.pause(ALICE, f"{ESCAPES}hold [PROD] now"))
        await c.tick(pilot)
        assert "hold [PROD] now" in screen_text(c.app)
        await c.call(lambda: c.engine.rollback(ALICE, f"{ESCAPES}because [PROD] said so"))
        await c.until(pilot, lambda: c.app.snapshot.state == State.ROLLED_BACK and c.app.snapshot.action is None)
        assert "because [PROD] said so" in screen_text(c.app)
        await pilot.press("r")
        assert isinstance(c.app.screen, ConfirmDialog) and "because [PROD] said so" in screen_text(c.app)
        await pilot.press("escape")
        assert c.app.is_running


def test_a_prometheus_error_with_escapes_never_retitles_the_terminal(tmux, tmp_path, http_server):
    plan = hostile_plan(prometheus(http_server).url)
    path = write_plan(tmp_path, plan)
    tmux.start(f"{WARROOM} {path} --state {tmp_path / 'state.sqlite'}", size=(200, 60))
    title = tmux.run("display-message", "-p", "-t", tmux.name, "#{pane_title}")
    tmux.wait_for("[bold]boom[/bold]")  # in the banner and the journal, as written: shown before the engine's first snapshot
    screen = tmux.wait_for("exp[/]v2")  # the flags panel, once the engine's first snapshot is in
    assert "launch [bold red]NOW[/]" in screen  # the markup-looking flag did not crash it
    tmux.run("send-keys", "-t", tmux.name, "s")  # the dialog names the flag, too
    assert "exp[/]v2: absent → 5%" in tmux.wait_for("Will change")
    assert tmux.run("display-message", "-p", "-t", tmux.name, "#{pane_title}") == title
    assert "pwned" not in title
