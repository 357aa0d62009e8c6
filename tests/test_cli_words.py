"""What the CLI says, read as a newcomer reads it (issue 23): help, status and check in words
that name the real thing, in the unit a human reads."""

from __future__ import annotations

import re

from tests.support.helpers import free_port
from tests.test_cli import sample_variant, warroom


def test_help_prints_one_usage_and_documents_every_option():
    shown = warroom("--help").stdout
    assert shown.count("usage:") == 1, shown
    for verb, option in (("rollback", "--reason"), ("pause", "--reason"), ("step", "--reason"), ("status", "--json"),
                         ("journal", "--json"), ("report", "--format")):
        text = warroom(verb, "--help").stdout
        described = re.search(rf"^  {re.escape(option)}\b[^\n]*(\n {{10,}}\S[^\n]*)*", text, re.M)
        assert described and len(described.group().split()) > 3, f"{verb} {option} has no description:\n{text}"


def test_status_with_no_engine_names_the_plan_to_start_it_with(tmp_path):
    plan = sample_variant(tmp_path, automation={"step_up": "manual"})
    assert warroom("up", str(plan), check=True).returncode == 0
    assert warroom("step", str(plan), check=True).returncode == 0
    assert warroom("down", str(plan), "--force", check=True).returncode == 0
    status = warroom("status", str(plan))
    assert status.returncode == 9
    assert f"Start one: warroom up {plan}" in status.stdout and "warroom up PLAN" not in status.stdout, status.stdout


def test_check_says_each_source_in_a_line_first_and_values_in_the_panes_unit(tmp_path):
    port = free_port()
    down = {"type": "prometheus", "url": f"http://127.0.0.1:{port}", "timeout": "2s"}
    plan = sample_variant(tmp_path)
    text = plan.read_text()
    import yaml

    data = yaml.safe_load(text)
    data["sources"]["far"] = down
    data["panes"].append({"id": "far_errors", "title": "Far errors", "source": "far", "query": "sum(rate(x[1m]))", "unit": "ratio"})
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    result = warroom("check", str(plan))
    assert result.returncode == 7
    lines = result.stdout.splitlines()
    summary = lines[lines.index("sources:") + 1:lines.index("queries:")]
    assert len(summary) == 2, summary
    assert summary[0].startswith("  ok   service (simulator): ") and "answered" in summary[0], summary
    assert summary[1].startswith(f"  FAIL far (127.0.0.1:{port}): ") and "connection refused" in summary[1], summary
    # The error rate as its pane shows it (0.04%), not the raw query value (0.000410143).
    error_rate = lines.index("  ok   [service] " + data["panes"][0]["query"])
    assert re.fullmatch(r" {7}value \d+\.\d+%", lines[error_rate + 1]), lines[error_rate + 1]
