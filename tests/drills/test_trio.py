"""The trio, all real: the rehearsal exporter following a real Unleash, a real Prometheus
scraping it every second, and `warroom run --headless` driving the plan.

A fault of the new code scheduled for phase 3 (5 % exposure) shows on the service's
numbers in Prometheus, the error-rate guardrail rolls back, the runner turns the Unleash
feature off, the exporter reads it back off, and the fault is gone from Prometheus.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse

import yaml

from tests.support.servers import _stop, http_get, http_send, start_exporter
from tests.support.waiting import until

ERRORS = 'sum(rate(warroom_sim_http_requests_total{code=~"5.."}[5s])) / sum(rate(warroom_sim_http_requests_total[5s]))'
NEW_5XX = 'sum(rate(warroom_sim_http_requests_total{cohort="new", code=~"5.."}[5s]))'


def prom_value(url: str, query: str) -> float | None:
    status, body = http_get(f"{url}/api/v1/query?query={urllib.parse.quote(query)}")
    result = json.loads(body)["data"]["result"] if status == 200 else []
    return float(result[0]["value"][1]) if result else None


def test_a_phase_three_fault_of_the_new_code_is_rolled_back_and_leaves_prometheus(
        tmp_path, unleash, unleash_token, unleash_admin, unleash_feature, prometheus_factory):
    flag = unleash_feature
    faults = tmp_path / "faults.yaml"
    # Half the new code's requests fail from 1 s into phase 3: at 5 % exposure, ~3 % of all.
    faults.write_text("- {metric: error_rate, phase: 3, after: 1s, value: 0.5}\n")
    plan = tmp_path / "plan.yaml"
    body = {
        "rollout": {"name": "trio", "environment": "staging"},
        "sources": {"prom": {"type": "prometheus", "url": "http://127.0.0.1:9", "timeout": "2s", "backfill": "0s"}},
        "flag_provider": {"provider": "unleash", "url": unleash, "token": unleash_token, "environment": "production"},
        "state": "trio.sqlite",
        "poll_interval": "1s",
        "automation": {"step_up": "auto"},
        "panes": [{"id": "errors", "title": "5xx share", "query": ERRORS, "unit": "ratio"}],
        "guardrails": [{"id": "five-xx", "pane": "errors", "above": "1%", "for": "3s"}],
        "phases": [
            {"name": "Staff only", "flags": {flag: {"enabled": True, "rollout": 10, "segments": ["staff"]}}, "hold": "2s"},
            {"name": "Canary 1%", "flags": {flag: 1}, "hold": "2s"},
            {"name": "Canary 5%", "flags": {flag: 5}, "hold": "2m"},
            {"name": "Beta 25%", "flags": {flag: 25}, "hold": "2m"},
            {"name": "Half 50%", "flags": {flag: 50}, "hold": "2m"},
            {"name": "Everyone", "flags": {flag: 100}, "hold": "2m"},
        ],
    }
    # The exporter takes flag provider, flag and phases from the plan; Prometheus' address comes after.
    plan.write_text(yaml.safe_dump(body))
    exporter = start_exporter(None, "--plan", str(plan), "--faults", str(faults))
    try:
        prometheus = prometheus_factory([exporter.target])
        prometheus.wait_for_data("warroom_sim_http_requests_total", minimum=6)
        assert http_send("GET", exporter.url + "/fault")[1]["flag_state"] == "off"
        plan.write_text(yaml.safe_dump({**body, "sources": {"prom": {**body["sources"]["prom"], "url": prometheus.url}}}))

        run = subprocess.run([sys.executable, "-m", "warroom", "run", str(plan), "--headless", "--until-done", "--for", "3m"],
                             capture_output=True, text=True, timeout=240)
        assert run.returncode == 5, run.stdout + run.stderr  # ROLLED BACK
        journal = subprocess.run([sys.executable, "-m", "warroom", "journal", str(plan), "--json"],
                                 capture_output=True, text=True, check=True).stdout
        entries = [json.loads(line) for line in journal.splitlines()]
        breach = next(e for e in entries if e["kind"] == "guardrail.breach")
        intent = next(e for e in entries if e["kind"] == "rollback.intent")
        assert intent["data"]["from_phase"] == 3 and intent["actor"] == "warroom (automatic)"
        assert "guardrail five-xx" in intent["message"] and breach["data"]["value"] > 0.01
        assert [e["kind"] for e in entries].count("rollback.confirmed") == 1

        # Unleash says off; the exporter read it back off; the fault is gone from Prometheus.
        env = unleash_admin.get(f"/features/{flag}/environments/production").json()
        assert env["enabled"] is False
        until("the exporter to read the flag off", lambda: http_send("GET", exporter.url + "/fault")[1]["exposure"] == 0)
        until("the new code's 5xx to leave Prometheus", lambda: prom_value(prometheus.url, NEW_5XX) == 0)
        assert prom_value(prometheus.url, ERRORS) < 0.001
    finally:
        _stop(exporter.proc)
