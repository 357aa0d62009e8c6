"""`warroom drill --staging`: the plan's own sources and flag provider, faults on the client side.

Against a real Prometheus scraping the rehearsal exporter (which follows the staging flag
store the drill writes): the scenario's dark spell and slow flag service are injected in
warroom's own client, metric changes are refused (they need the simulator), and fast
time is refused (the flags are staging's own).
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.support.servers import _stop, http_send, start_exporter, write_flags
from warroom.cli.main import main
from warroom.store import open_store as Store

ERRORS = 'sum(rate(warroom_sim_http_requests_total{code=~"5.."}[5s])) / sum(rate(warroom_sim_http_requests_total[5s]))'

SCENARIO = """
name: staging-dark
title: Staging metrics go dark
soak: 6s
duration: 45s
timeline:
  - {phase: 1, after: 1s, flags: slow, delay: 1s, duration: 3s}
  - {phase: 1, after: 2s, metrics: dark, duration: 5s, while_exposed: false}
responder:
  - {on: alarm, after: 1s, do: pause, reason: flying blind}
  - {phase: 1, after: 12s, do: resume}
expect: {action: pause, within: 5s, by: human}
"""


@pytest.fixture
def staging(tmp_path, prometheus_factory):
    """A staging plan on a real Prometheus that scrapes the exporter, which follows the plan's flag store."""
    flags = tmp_path / "flags.json"
    write_flags(flags, 0.0, flag="feature")
    plan = tmp_path / "staging.yaml"
    exporter = start_exporter(flags, "--flag", "feature")
    try:
        prometheus = prometheus_factory([exporter.target])
        prometheus.wait_for_data("warroom_sim_http_requests_total", minimum=6)
        plan.write_text(yaml.safe_dump({
            "rollout": {"name": "staging-drill", "environment": "staging"},
            "sources": {"prom": {"type": "prometheus", "url": prometheus.url, "timeout": "2s", "backfill": "0s"}},
            "flag_provider": {"provider": "local", "path": "flags.json"},
            "state": "staging.sqlite",
            "poll_interval": "1s",
            "automation": {"step_up": "auto"},
            "panes": [{"id": "errors", "title": "Errors", "query": ERRORS, "unit": "ratio"}],
            "guardrails": [{"id": "errors", "pane": "errors", "above": 0.01, "for": "5s"}],
            "phases": [{"name": "Canary 5%", "flags": {"feature": 5}, "hold": "1m"},
                       {"name": "Half 50%", "flags": {"feature": 50}, "hold": "1m"}],
        }, sort_keys=False))
        yield plan, exporter
    finally:
        _stop(exporter.proc)


def test_a_staging_drill_injects_a_dark_source_and_a_slow_flag_service_on_the_client_side(staging, tmp_path, capsys):
    plan, exporter = staging
    scenario = tmp_path / "staging-dark.yaml"
    scenario.write_text(SCENARIO)
    db = tmp_path / "drill" / "state.sqlite"
    code = main(["drill", str(plan), "--staging", "--headless", "--scenario", str(scenario), "--state", str(db)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "phase 1 Canary 5%: soak 1m → 6s in this drill" in out
    card = next(e for e in Store(db).entries() if e.kind == "drill.score").data["card"]
    assert card["passed"] and card["final_state"] == "COMPLETE", card
    entries = Store(db).entries()
    # Real numbers from Prometheus before and after; the dark spell was warroom's own client.
    dark = next(e for e in entries if e.kind == "source.error")
    assert dark.message == "source prom: drill fault: the metrics source is dark"
    assert any(e.kind == "source.recovered" for e in entries if e.seq > dark.seq)
    assert Store(db).entries()[0].kind == "rollout.init" and not (tmp_path / "staging.sqlite").exists()
    # The staging flag store is the one written (no scratch copy), and the exporter followed it.
    assert json.loads((plan.parent / "flags.json").read_text())["flags"]["feature"]["rollout_percentage"] == 50
    assert http_send("GET", exporter.url + "/fault")[1]["exposure"] == 0.5
    assert [i.split(" ", 1)[1] for i in card["injected"]] == [
        "flag service slow (1s a call), phase 1 +1s for 3s", "metrics source dark, phase 1 +2s for 5s"]


def test_a_staging_drill_refuses_metric_faults_and_fast_time(staging, capsys):
    plan, _ = staging
    assert main(["drill", str(plan), "--staging", "--headless", "--scenario", "canary-error-spike"]) == 1
    err = capsys.readouterr().err
    assert ("scenario canary-error-spike changes metrics (error_rate set 0.4 in the new code), which needs the "
            "simulator: --staging reads the plan's real sources") in err
    assert main(["drill", str(plan), "--staging", "--headless", "--speed", "10", "--scenario", "metrics-outage"]) == 2
    assert "--speed 10 is refused with --staging: the drill writes the plan's real staging flags" in capsys.readouterr().err
    # Offline, the same plan drills fast: Prometheus becomes the simulator, flags a scratch file.
    assert main(["drill", str(plan), "--headless", "--scenario", "canary-error-spike", "--state",
                 str(plan.parent / "offline" / "state.sqlite")]) == 0
    assert json.loads((plan.parent / "flags.json").read_text())["flags"]["feature"]["enabled"] is False
