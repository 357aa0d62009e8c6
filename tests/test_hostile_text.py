"""Text from plans, servers and people is data: no escape sequence reaches a terminal through
`check`, `status`, `tick`, `journal`, headless lines or refusals, and the Markdown report shows
hostile names as text, never as markup or HTML."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

WARROOM = [sys.executable, "-m", "warroom"]
# What the audit sent: retitle the terminal (OSC), clear the screen (CSI), ring the bell, an 8-bit CSI.
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
IMG = "<img src=x onerror=alert(1)>"

PLAN = r"""
rollout: {name: hostile, environment: drill, description: "launch \e]0;pwned\a notes"}
sources:
  sim: {type: simulator, seed: 1, flag: feature, noise: 0}
flag_provider: {provider: local, path: flags.json}
state: state.sqlite
poll_interval: 5s
panes:
  - {id: errors, title: "Errors \e[2J\e[H", query: error_rate, unit: ratio}
guardrails:
  - {id: errors, pane: errors, above: 0.01, for: 30s}
phases:
  - name: "Beta \e]0;pwned\a 5% | *bold* [x](y)"
    flags: {feature: 5, "FLAGNAME": 5}
    checklist:
      - {text: "Check \e[31mdashboards\e[0m \x9b2J | <b>now</b>", required: true}
      - Support briefed
""".replace("FLAGNAME", IMG)


def warroom(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    run = subprocess.run([*WARROOM, *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=cwd)
    assert "Traceback" not in run.stderr, run.stderr
    return run


def assert_clean(run: subprocess.CompletedProcess) -> str:
    text = run.stdout + run.stderr
    assert not RAW.search(text.replace("\n", "")), repr(text[:3000])
    return text


@pytest.fixture
def plan(tmp_path) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    return path


def test_plan_text_and_reasons_never_reach_the_terminal_raw(plan):
    assert warroom("up", str(plan)).returncode == 0
    assert warroom("step", str(plan)).returncode == 0
    status = assert_clean(warroom("status", str(plan)))
    assert "phase 1/1 Beta  5% | *bold* [x](y)" in status and "Errors" in status
    ticked = assert_clean(warroom("tick", str(plan), "1"))
    assert ticked.startswith("ticked: Check dashboards  | <b>now</b>")
    refused = warroom("tick", str(plan), "no such \x1b]0;pwned\x07 item")
    assert refused.returncode == 6 and "no single checklist item" in assert_clean(refused)
    paused = warroom("pause", str(plan), "--reason", "DBA \x1b]0;pwned\x07 hold \x1b[2J")
    assert_clean(paused)
    assert "paused: DBA  hold" in assert_clean(warroom("status", str(plan)))
    journal = assert_clean(warroom("journal", str(plan)))
    assert "DBA  hold" in journal and "ticked: Check dashboards" in journal
    # --json keeps the text as it was, escaped by JSON itself
    entries = [json.loads(line) for line in warroom("journal", str(plan), "--json").stdout.splitlines()]
    assert any("\x1b]0;pwned\x07" in e["message"] for e in entries)
    assert warroom("down", str(plan), "--force").returncode == 0  # the headless run below is the next engine
    headless = assert_clean(warroom("run", "--headless", str(plan), "--speed", "max", "--for", "1m"))
    assert "status" in headless and "Beta  5%" in headless


def test_plan_errors_quoting_hostile_keys_are_clean(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(PLAN.replace("poll_interval: 5s", 'poll_interval: 5s\n"\\e]0;pwned\\a": 1'))
    run = warroom("check", str(bad))
    assert run.returncode == 1 and "unknown key" in assert_clean(run)


class _Prometheus(BaseHTTPRequestHandler):
    """A Prometheus that answers every query with an error carrying escape sequences."""

    def do_GET(self) -> None:
        body = json.dumps({"status": "error", "errorType": "bad_data",
                           "error": "parse error \x1b]0;pwned\x07\x1b[2J at \x9b31m char 3"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_a_prometheus_error_with_escape_sequences_is_clean_in_check(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        plan = tmp_path / "plan.yaml"
        plan.write_text(PLAN.replace("sim: {type: simulator, seed: 1, flag: feature, noise: 0}",
                                     f'prom: {{type: prometheus, url: "http://127.0.0.1:{server.server_address[1]}"}}'))
        run = warroom("check", str(plan))
        assert run.returncode == 7
        assert "parse error  at  char 3" in assert_clean(run)
    finally:
        server.shutdown()
        server.server_close()


def test_markdown_report_shows_hostile_names_as_text(plan):
    warroom("up", str(plan))
    warroom("step", str(plan))
    warroom("tick", str(plan), "1")
    warroom("rollback", str(plan), "--reason", "spike | see [runbook](http://evil) <script>x</script>")
    run = warroom("report", str(plan))
    assert run.returncode == 0
    md = assert_clean(run)
    assert IMG not in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "<script>" not in md and "<b>" not in md
    # A `|` in a name never splits a table cell; links and emphasis are escaped.
    # The phase's offset is wall-clock time since `up` (one second or more on a busy machine): not asserted.
    assert re.search(r"\| 1 Beta  5% \\\| \\\*bold\\\* \\\[x\\\]\(y\) \| \+\d+s \|", md), md
    assert "spike \\| see \\[runbook\\](http://evil) &lt;script&gt;x&lt;/script&gt;" in md
    for line in md.splitlines():
        if line.startswith("| ") and "Check dashboards" in line:
            assert line.count(" | ") == 4, line  # five cells in the checklist table
