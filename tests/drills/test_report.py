"""`warroom report` on a drill's journal: Markdown and a self-contained HTML that Chromium renders cleanly."""

from __future__ import annotations

import io
import re
import subprocess
from importlib import resources

import pytest

from tests.drills.conftest import drill
from tests.support.helpers import require_binary
from warroom.cli.main import main
from warroom.core.clock import VirtualClock
from warroom.core.snapshot import State
from warroom.engine.build import build_engine
from warroom.engine.process import RunOptions, serve_engine
from warroom.plan.faults import Fault
from warroom.plan.load import load_plan

SECTIONS = ("summary", "scorecard", "phases", "breaches", "rollbacks", "actions", "checklist", "charts", "events", "timeline", "follow-ups")


@pytest.fixture
async def drilled(tmp_path):
    """The latency-creep drill: two phases, a cohort guardrail's breach, a human rollback, ticked items."""
    card, db, _ = await drill(tmp_path, "latency-creep")
    return card, db


def test_markdown_report(drilled, tmp_path, capsys):
    card, db = drilled
    out = tmp_path / "pm.md"
    assert main(["report", "--state", str(db), "-o", str(out)]) == 0
    md = out.read_text()
    for heading in ("# Post-mortem: demo-realtime-features (DRILL)", "## Drill score card", "## Phases",
                    "## Guardrail breaches", "## Rollbacks", "## Checklist", "## Timeline"):
        assert heading in md
    # Phases with durations: 1 held its soak, 2 ended by the rollback.
    assert "| 1 Beta 5% | +0s | 20s | step up |" in md
    assert "| 2 Beta 25% | +20s | 21s | rollback |" in md
    # The breach with its numbers, and who rolled back why. The new code's p95 creeps from phase 2:
    # against the control it is worse by 100 ms and ×1.5 at 25 % exposure, long before the
    # service's p95 crosses 500 ms (at 75 %).
    assert ("| p95-vs-control | +36s | new 163 ms vs control 59 ms Δ+104 ms n=7305/18629 (worse beyond +100 ms and ×1.5) "
            "| above 159 ms | 10s |") in md
    assert "rolled back by responder@drill script after 5s |" in md
    assert "by **responder@drill script**: p95 climbing steadily since phase 2" in md
    assert "| 1 | Monitoring dashboards checked | yes | responder@drill script | +0s |" in md
    assert "| 2 | User feedback from the 5% cohort reviewed | yes | responder@drill script |" in md
    assert "DRILL SCORE: Slow latency creep [latency-creep] — PASS" in md
    # Every action with who and why; detect and mitigate times; completion; the seeds' 48-hour rule.
    assert "| +20s | step up | warroom (automatic) | phase 1 held its soak (20s), gates green, required items ticked (1/1) |" in md
    assert "| +0s | step up | warroom (automatic) | the first step: nothing is held before phase 1 |" in md
    assert "| +41s | rollback | responder@drill script | p95 climbing steadily since phase 2 |" in md
    assert "| First response (time to detect) | rollback by responder@drill script after 5.0s |" in md
    assert "| Checklist | 2/2 required items ticked in the phases entered; 2/3 items in all |" in md
    assert "| Post-mortem due |" in md and "### Action items (owner, due date)" in md
    # The timeline has the breach and the injected fault between the step and the rollback (issue 23).
    timeline = md.split("## Timeline", 1)[1].split("## Follow-ups", 1)[0]
    kinds = [row.split(" | ")[2] for row in timeline.splitlines() if row.startswith("| +")]
    around = kinds[kinds.index("step.outcome", kinds.index("step.outcome") + 1):kinds.index("rollback.intent")]
    assert "drill.fault" in around and "guardrail.breach" in around, kinds
    # No shadow guardrail in the plan: no empty table for them, no line in the summary.
    assert "Shadow guardrails" not in md


def test_report_needs_a_journal(tmp_path, capsys):
    assert main(["report", "--state", str(tmp_path / "none.sqlite")]) == 1
    assert "no journal here" in capsys.readouterr().err


@pytest.mark.slow  # Chromium
def test_html_report_renders_in_chromium(drilled, tmp_path):
    chromium = require_binary("chromium")
    card, db = drilled
    page = tmp_path / "pm.html"
    assert main(["report", "--state", str(db), "--format", "html", "-o", str(page)]) == 0
    text = page.read_text()
    # Self-contained: no scripts, no external assets.
    assert "<script" not in text and not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    assert text.count("<svg") >= 8 + 2  # every pane over the run, and the panes around each event

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium'}", "--enable-logging=stderr", "--v=0"]
    url = page.as_uri()
    shot = tmp_path / "report.png"
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=60)
    snap = subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,2000", url],
                          capture_output=True, text=True, timeout=60)
    for run in (dom, snap):
        assert run.returncode == 0, run.stderr[-2000:]
        assert "Uncaught" not in run.stderr and "ERROR:CONSOLE" not in run.stderr
    for section in SECTIONS:
        assert f'<section id="{section}">' in dom.stdout
    assert "Slow latency creep" in dom.stdout and "PASS" in dom.stdout
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


async def test_report_of_a_production_launch_needs_no_plan_file_and_no_server(tmp_path, capsys, monkeypatch):
    # A production run of a plan that is not the demo: an error spike in the canary, rolled back.
    # Fast time is refused on a production plan's state from the command line, so the launch
    # is driven here through the engine, in virtual time, as `run --headless` would drive it.
    monkeypatch.chdir(tmp_path)  # its runbook really runs (it writes rollback-demo.log here)
    text = (resources.files("warroom.plan") / "demo.yaml").read_text()
    text = text.replace("environment: drill", "environment: production").replace("name: demo-realtime-features", "name: payments-v2")
    # An alert-only guardrail on the same pane, slower than the rollback's window.
    text = text.replace("guardrails:\n", "guardrails:\n  - {id: error-rate-warning, pane: error_rate, above: 0.005, for: 30s, action: alert}\n", 1)
    plan = tmp_path / "launch" / "plan.yaml"
    plan.parent.mkdir()
    plan.write_text(text)
    faults = (Fault(metric="error_rate", phase=1, after=5, value=0.05, while_exposed=False),)
    engine = build_engine(load_plan(plan), clock=VirtualClock(1_800_000_000.0), extra_faults=faults)
    snap, _ = await serve_engine(engine, log_path=None, options=RunOptions(until_done=True, run_for=3600), terminal=io.StringIO())
    assert snap.state == State.ROLLED_BACK
    db = plan.parent / "demo.sqlite"
    plan.unlink()  # yesterday's launch: the plan file has moved on, no source is running
    capsys.readouterr()

    assert main(["report", "--state", str(db)]) == 0
    md = capsys.readouterr().out
    assert md.startswith("# Post-mortem: payments-v2 (PRODUCTION)")
    assert "Drill score card" not in md
    assert "| 1 Beta 5% | +0s |" in md and "| error-rate | +5s | 5.00% | above 1.00% | 10s |" in md
    assert "| First response (time to detect) | rollback by warroom (automatic) after 10.0s |" in md
    assert "| +15s | rollback | warroom (automatic) | guardrail error-rate: error_rate 5.00% above 1.00% (held 10s) |" in md
    assert "| Checklist | 0/1 required items ticked in the phases entered; 1 not ticked; 0/2 items in all |" in md
    assert "required items ticked" not in md.split("## Actions", 1)[1].split("## Checklist", 1)[0]  # none were
    # The alert-only guardrail did not roll back: error-rate did, first.
    alert = next(row for row in md.splitlines() if row.startswith("| error-rate-warning |"))
    assert "rolled back" not in alert and "error-rate" in alert.split(" | ")[-1], alert
    assert "## Follow-ups" in md and "### Lessons learned" in md
    page = tmp_path / "pm.html"
    assert main(["report", "--state", str(db), "--format", "html", "-o", str(page)]) == 0
    assert "payments-v2" in page.read_text() and "<section id='actions'>" in page.read_text()


async def test_a_drill_whose_rollback_was_stuck_says_where_its_charts_have_no_samples(tmp_path):
    chromium = require_binary("chromium")
    card, db, _ = await drill(tmp_path, "flag-service-down-during-rollback")
    page = tmp_path / "pm.html"
    assert main(["report", "--state", str(db), "--format", "html", "-o", str(page)]) == 0
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60).stdout
    overview = dom.split('<section id="charts">', 1)[1].split("</section>", 1)[0]
    # The rollback retried for 40 s of drill time with no sample taken: the chart says so, it is
    # not a line that simply stops.
    assert overview.count("no samples") >= 8, overview[:2000]
    summary = dom.split('<section id="summary">', 1)[1].split("</section>", 1)[0]
    assert "drill time" in summary, summary  # virtual time: the times are the drill's clock, not the wall's
