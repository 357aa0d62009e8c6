"""The CLI as a user runs it: separate processes on a real SQLite file and flag file."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.waiting import until

ROOT = Path(__file__).resolve().parent.parent
WARROOM = [sys.executable, "-m", "warroom"]


def warroom(*args: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
    result = subprocess.run([*WARROOM, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert "Traceback" not in result.stderr, result.stderr
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def sample_variant(tmp_path: Path, **changes) -> Path:
    """sample-config.yaml with automatic step-up and optional items, so a headless run walks the phases."""
    plan = yaml.safe_load((ROOT / "sample-config.yaml").read_text())
    # A rehearsal copy (its own state and flag file): fast time is refused on a staging plan's real state.
    plan["rollout"]["environment"] = "drill"
    plan["automation"] = {"step_up": "auto"}
    for key in ("roles", "go_no_go"):  # nobody signs off in a headless run: these walk the phases by themselves
        plan.pop(key)
    for phase in plan["phases"]:
        phase.pop("approvals", None)
        phase["checklist"] = [{"text": i["text"] if isinstance(i, dict) else i} for i in phase["checklist"]]
    plan["state"] = str(tmp_path / "state.sqlite")
    plan["flag_provider"]["path"] = str(tmp_path / "flags.json")
    plan.update(changes)
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def journal(path: Path) -> list[dict]:
    out = warroom("journal", str(path), "--json", check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_headless_run_rolls_back_on_a_phase_two_error_fault(tmp_path):
    plan = sample_variant(tmp_path)
    faults = tmp_path / "faults.yaml"
    faults.write_text("- {metric: error_rate, phase: 2, after: 10m, mode: set, value: 0.03, while_exposed: false}\n")
    run = warroom("run", "--headless", str(plan), "--speed", "max", "--until-done", "--faults", str(faults))
    assert run.returncode == 5, run.stdout + run.stderr  # ROLLED BACK
    assert "rollback.intent" in run.stdout and "ROLLED BACK" in run.stdout.splitlines()[-1]

    entries = journal(plan)
    kinds = [e["kind"] for e in entries]
    breach = next(e for e in entries if e["kind"] == "guardrail.breach" and e["data"]["guardrail"] == "error-rate")
    assert breach["data"]["value"] == pytest.approx(0.03) and breach["data"]["threshold"] == 0.01
    intent = next(e for e in entries if e["kind"] == "rollback.intent")
    assert intent["data"]["from_phase"] == 2
    assert "error_rate 3.00% above 1.00%" in intent["message"]
    confirmed = next(e for e in entries if e["kind"] == "rollback.confirmed")
    assert confirmed["data"]["observed"]["realtime-features"]["enabled"] is False
    assert kinds.index("guardrail.breach") < kinds.index("rollback.intent") < kinds.index("rollback.confirmed") < kinds.index("rollback.outcome")
    # The breach is seen at the first poll after the fault starts (10 m into phase 2) …
    phase_two = next(e["ts"] for e in entries if e["kind"] == "step.outcome" and e["data"].get("entered_phase") == 2)
    assert phase_two + 600 <= breach["data"]["since"] <= phase_two + 600 + 5
    # … and the flag is confirmed off within one poll interval of the `for` window being satisfied.
    window_met = breach["data"]["since"] + 30
    assert window_met <= confirmed["ts"] <= window_met + 5
    assert json.loads((tmp_path / "flags.json").read_text())["flags"]["realtime-features"]["enabled"] is False
    status = warroom("status", str(plan), "--json")
    assert status.returncode == 5 and json.loads(status.stdout)["state"] == "ROLLED_BACK"


@pytest.mark.parametrize("restart_with", ["runner", "cli-verb"])
def test_sigkill_between_rollback_intent_and_outcome_loses_and_doubles_nothing(tmp_path, restart_with):
    marker, release = tmp_path / "drain-started", tmp_path / "drain-released"
    # The first run of the drain step SIGKILLs its engine the moment it starts (the worst moment: the
    # step's record must be in the store already), says which process group it is ($$: the step's shell
    # leads its group) and which engine it killed, and hangs on (a slow kubectl). After the restart the
    # step finishes once the test releases it (so the rollback verb's command reaches the engine while
    # the runbook still runs).
    again = f"while ! test -f {release}; do sleep 0.05; done; exit 0"
    first = f"kill -9 $PPID; echo $$ $PPID > {marker}.part && mv {marker}.part {marker}; sleep 60"
    slow_step = {"name": "Drain connections", "run": ["sh", "-c", f"test -f {marker} && {{ {again}; }}; {first}"], "timeout": "2m"}
    plan = sample_variant(tmp_path, rollback={"flags": {"realtime-features": False, "websocket_simple": False, "health_simple": True}, "steps": [slow_step],
                                              "dry_run": False})  # the simulator alone would only journal the step
    faults = tmp_path / "faults.yaml"
    faults.write_text("- {metric: error_rate, phase: 1, after: 1m, mode: set, value: 0.05, while_exposed: false}\n")
    runner = subprocess.Popen([*WARROOM, "run", "--headless", str(plan), "--speed", "max", "--faults", str(faults)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    # The step writes its marker after the kill: the runner killed is not yet the marker written.
    until("the drain step to kill its engine and say so", lambda: marker.exists() or runner.poll() not in (None, -signal.SIGKILL))
    assert marker.exists() and runner.wait() == -signal.SIGKILL, runner.stderr.read().decode()
    first_group, killed = map(int, marker.read_text().split())
    assert killed == runner.pid

    db = sqlite3.connect(tmp_path / "state.sqlite")
    before = db.execute("SELECT seq, kind, message FROM journal ORDER BY seq").fetchall()
    db.close()
    before_kinds = [k for _, k, _ in before]
    assert "rollback.intent" in before_kinds and "rollback.outcome" not in before_kinds

    if restart_with == "runner":
        release.touch()
        restart = warroom("run", "--headless", str(plan), "--speed", "max", "--until-done", timeout=60)
        assert restart.returncode == 5, restart.stdout + restart.stderr
    else:
        # No engine is left: `rollback` starts one, which finishes the rollback first; the verb waits for
        # it, also when its command is answered while the resumed runbook still runs (ROLLED BACK already).
        verb = subprocess.Popen([*WARROOM, "rollback", str(plan)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)
        until("the engine took the rollback command", lambda: commands_taken(tmp_path / "state.sqlite"))
        release.touch()
        out, err = verb.communicate(timeout=60)
        restart = subprocess.CompletedProcess(verb.args, verb.returncode, out, err)
        assert "Traceback" not in restart.stderr, restart.stderr
        assert restart.returncode == 0 and "no engine drove this rollout: started one to roll back" in restart.stderr, restart.stderr
        assert f"stop it with `warroom down {plan}`" in restart.stderr, restart.stderr  # the plan given, not the word PLAN
        resumed = [line for line in restart.stderr.splitlines() if "resuming an unfinished rollback left by" in line]
        assert len(resumed) == 1 and resumed[0].endswith("which is gone"), restart.stderr
        assert "rollback: step 1 Drain connections: ok" in restart.stderr, restart.stderr + restart.stdout  # its progress, as it goes
        assert restart.stdout.splitlines()[-1] in ("rolled back", "already rolled back"), restart.stdout
    after = journal(plan)
    # Nothing lost: every entry written before the kill is still there, unchanged, in order.
    assert [(e["seq"], e["kind"], e["message"]) for e in after[: len(before)]] == [tuple(r) for r in before]
    kinds = [e["kind"] for e in after]
    for kind in ("rollback.intent", "rollback.confirmed", "rollback.resume", "rollback.outcome"):
        assert kinds.count(kind) == 1, (kind, kinds)
    assert kinds.index("rollback.resume") > len(before) - 1
    # The step ran only once its process group was in the store: the killed engine left that record,
    # and the engine that resumed (the verb's too) read it, however soon after the step began the kill came.
    (resume,) = [e for e in after if e["kind"] == "rollback.resume"]
    assert (resume["data"]["progress"].get("running") or {}).get("pgid") == first_group, resume["data"]
    step = [e for e in after if e["kind"] == "rollback.step"]
    assert len(step) == 1 and step[0]["data"]["ok"] is True
    # The first run of the step (its shell and its sleep) outlived the killed engine: the next one
    # stopped its process group before running the step again, so it never ran twice at once.
    (stopped,) = [e for e in after if e["kind"] == "rollback.step_stopped"]
    assert stopped["data"]["stopped_pgid"] == first_group
    assert kinds.index("rollback.step_stopped") < kinds.index("rollback.step")
    until("the stopped group's processes to be gone", lambda: running_in_group(first_group) == [])  # SIGKILL lands, not at once
    seqs = [e["seq"] for e in after]
    assert seqs == sorted(set(seqs))
    assert json.loads((tmp_path / "flags.json").read_text())["flags"]["realtime-features"]["enabled"] is False


def commands_taken(state: Path) -> bool:
    """Whether an engine has taken (or answered) a command sent to this state."""
    db = sqlite3.connect(state)
    try:
        return db.execute("SELECT count(*) FROM commands WHERE status != 'queued'").fetchone()[0] > 0
    finally:
        db.close()


def running_in_group(pgid: int) -> list[int]:
    """Processes of a process group that still run (a killed one not yet reaped is a zombie: not running)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def test_a_virtual_time_run_waiting_for_a_human_still_ends(tmp_path):
    plan = sample_variant(tmp_path, automation={"step_up": "manual"})
    run = warroom("run", "--headless", str(plan), "--speed", "max", "--until-done", "--for", "2h", timeout=60)
    assert run.returncode == 0 and run.stdout.count("ran for 2h00m of clock time (--for)") == 1
    assert "PENDING phase 0/5" in run.stdout.splitlines()[-1]


def test_verbs_from_a_script(tmp_path):
    # No stakeholder updates: the rollback's update, drafted a tick later, would land among the journal's newest lines.
    plan = sample_variant(tmp_path, automation={"step_up": "manual"}, updates=None)
    refused = warroom("step", str(plan))
    assert refused.returncode == 6 and f"no engine drives realtime-features: start one with `warroom up {plan}`" in refused.stderr
    assert warroom("up", str(plan), check=True).stdout.startswith("engine started: pid ")
    assert warroom("status", str(plan)).returncode == 0
    assert "stepped up to phase 1" in warroom("step", str(plan), check=True).stdout
    refused = warroom("step", str(plan))
    assert refused.returncode == 6 and "soak" in refused.stderr
    assert warroom("tick", str(plan), "Support team", check=True).stdout.startswith("ticked: Support team trained")
    assert warroom("step", str(plan), "--force").returncode == 6
    forced = warroom("step", str(plan), "--force", "--reason", "rehearsal", check=True)
    assert "phase 2" in forced.stdout
    assert warroom("pause", str(plan), "--reason", "waiting for DBA", check=True).returncode == 0
    status = warroom("status", str(plan))
    assert status.returncode == 3 and "paused: waiting for DBA" in status.stdout
    warroom("resume", str(plan), check=True)
    assert warroom("rollback", str(plan), "--reason", "smoke test", check=True).stdout.startswith("rolled back")
    assert warroom("status", str(plan)).returncode == 5
    warroom("retry", str(plan), check=True)
    assert warroom("status", str(plan)).returncode == 0
    assert warroom("ack", str(plan)).returncode == 6
    user = [e for e in journal(plan) if e["kind"] == "pause"][0]
    assert user["actor"] and user["data"]["actor"]["user"]
    text = warroom("journal", str(plan), "--limit", "3", check=True).stdout.splitlines()
    assert len(text) == 3 and "retry" in text[-1]
    by_state = warroom("journal", "--state", str(tmp_path / "state.sqlite"), "--limit", "3", check=True).stdout.splitlines()
    assert by_state == text
    assert warroom("down", str(plan), check=True).stdout.startswith("engine ")


def test_a_headless_runner_prints_what_verbs_from_other_terminals_do(tmp_path):
    plan = sample_variant(tmp_path, automation={"step_up": "manual"})
    log = tmp_path / "runner.log"
    with log.open("w") as out:
        runner = subprocess.Popen([*WARROOM, "run", "--headless", str(plan), "--speed", "60"],
                                  stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        until("the runner to start its engine", lambda: "engine.start" in log.read_text(), every=0.1)
        warroom("step", str(plan), check=True)
        warroom("pause", str(plan), "--reason", "DBA asked for a hold", check=True)
        until("the runner to print the pause", lambda: "DBA asked" in log.read_text(), every=0.1)
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.wait(30)
    lines = [line.split(" ", 1)[1] for line in log.read_text().splitlines() if " status " not in line]
    kinds = [line.split()[0] for line in lines]
    assert kinds[:2] == ["rollout.init", "engine.start"] and kinds[-1] == "engine.left"  # stopped while PAUSED: said loudly
    assert kinds[2:-1] == ["step.intent", "step.outcome", "pause"], lines
    assert "PAUSED: DBA asked for a hold" in lines[4]


def test_check_probes_every_query_and_flag(tmp_path):
    result = warroom("check", str(sample_variant(tmp_path)))
    assert result.returncode == 0, result.stdout
    # Its one source; 8 panes, the error rate's request count, and of the cohort queries all but the new
    # cohort's error rate and p95 (nobody is on the new code before the first step); 3 flags and their
    # store's writability; the state (none yet).
    assert result.stdout.count("  ok ") == 1 + 8 + 1 + 6 + 3 + 1 + 1 and "check: all good" in result.stdout
    assert "state: " in result.stdout and "  ok   no rollout recorded here yet (the first engine creates it)\n" in result.stdout
    assert result.stdout.count("  WARN ") == 2 and result.stdout.count("nodata: no traffic in the new cohort") == 2
    # Guardrails in words and in their pane's unit: a threshold off by a unit is visible here.
    assert "  p95-latency: rollback when latency_p95 is above 500 ms for 1m00s; no data: hold\n" in result.stdout
    assert ("  p95-vs-control: rollback when the new cohort is higher than the control by +100 ms and ×1.5 "
            "(latency_p95, seconds) for 1m00s; judged on at least 200 requests in the window per cohort; no data: hold\n") in result.stdout
    # Both sides of every comparison, their counts, and the exposure check's units, side by side.
    assert "  p95-vs-control: new nodata (no traffic in the new cohort); control 62 ms; requests new 0; requests control 24.3k\n" in result.stdout
    assert "  exposure check (flag realtime-features): units new 0; control 12.2k; new share now 0%\n" in result.stdout
    bad = sample_variant(tmp_path, panes=[{"id": "x", "title": "X", "query": "rate(nope[5m])"}], guardrails=[],
                         phases=[{"name": "a", "flags": {"realtime-features": 5, "websocket_simple": 5}}], rollback={})
    result = warroom("check", str(bad))
    assert result.returncode == 7 and "FAIL [service] rate(nope[5m])" in result.stdout


def test_plan_errors_are_messages_not_tracebacks(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rollout: {name: x, environment: staging}\nguardrails:\n  - pane: e\n    abvoe: 1\n")
    result = warroom("status", str(bad))
    assert result.returncode == 1
    assert f"{bad}:4:5: guardrails[0].abvoe: unknown key" in result.stderr
    assert warroom("status", str(tmp_path / "missing.yaml")).returncode == 1
    # A fault schedule given on the command line is located the same way.
    faults = tmp_path / "faults.yaml"
    faults.write_text("- {metric: error_rate, phase: two, value: 0.03, while_exposed: false}\n")
    result = warroom("run", "--headless", str(sample_variant(tmp_path)), "--speed", "max", "--faults", str(faults))
    assert result.returncode == 1
    assert result.stderr.startswith(f"{faults}:1:24: [0].phase: Input should be a valid integer"), result.stderr


def test_bad_speed_and_duration_arguments_are_usage_errors(tmp_path):
    plan = str(sample_variant(tmp_path))
    for args, says in ((["--speed", "abc"], "argument --speed: expected 1 (real time), N (N× faster) or max, not 'abc'"),
                       (["--speed", "0"], "argument --speed: expected 1 (real time), N (N× faster) or max, not '0'"),
                       (["--speed", "max", "--for", "soon"], "argument --for: expected a duration like 30s, 5m, 1h or 1h30m")):
        result = warroom("run", "--headless", plan, *args)
        assert result.returncode == 2 and says in result.stderr, result.stderr


def test_engine_never_imports_textual():
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'textual' or name.startswith('textual.'):\n"
        "            raise ImportError('textual is blocked for the engine')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import warroom.engine.engine, warroom.engine.build, warroom.engine.process, warroom.cli.main, warroom.store\n"
        "import warroom.sources.simulator.source, warroom.flags.local, warroom.outbound.runbook\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize("dry_run", [None, False])
def test_simulated_numbers_never_run_the_real_runbook_unless_the_plan_says_so(tmp_path, dry_run):
    # The sample plan's runbook is kubectl against the user's current context: a rollback of a
    # simulated launch must journal it, not scale a real deployment.
    marker = tmp_path / "ran"
    step = {"name": "Drain connections", "run": ["touch", str(marker)]}
    rollback = {"steps": [step], **({} if dry_run is None else {"dry_run": dry_run})}
    plan = sample_variant(tmp_path, rollback=rollback, automation={"step_up": "manual"},
                          rollout={"name": "realtime-features", "environment": "staging"})
    check = warroom("check", str(plan))
    expected = "dry run (every source is the simulator" if dry_run is None else "executed (rollback.dry_run in the plan)"
    assert f"rollback runbook: 1 step(s), {expected}" in check.stdout
    warroom("up", str(plan), check=True)
    warroom("step", str(plan), check=True)
    warroom("rollback", str(plan), check=True)
    steps = [e for e in journal(plan) if e["kind"] == "rollback.step"]
    assert len(steps) == 1
    if dry_run is None:
        assert not marker.exists() and steps[0]["data"]["dry_run"] and "dry run: would run touch" in steps[0]["message"]
    else:
        assert marker.exists() and not steps[0]["data"]["dry_run"]


def test_check_resolves_every_secret_the_plan_uses_and_never_prints_one(tmp_path):
    value = "s3cr3t-hook-value-9f8e7d"
    plan = sample_variant(
        tmp_path,
        rollback={"flags": {"realtime-features": False, "websocket_simple": False, "health_simple": True},
                  "steps": [{"webhook": "env:WARROOM_TEST_HOOK"},
                            {"http": {"url": "https://status.example.com/api", "headers": {"Authorization": "env:WARROOM_TEST_STATUS"}}}]},
        notify=[{"type": "slack", "url": "keyring:warroom-test/missing-notify"}])
    env = {**os.environ, "WARROOM_TEST_HOOK": value, "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
           "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("WARROOM_TEST_STATUS", None)
    result = subprocess.run([*WARROOM, "check", str(plan)], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert result.returncode == 7, result.stdout + result.stderr
    assert value not in result.stdout + result.stderr
    assert "  ok   rollback.steps[0].webhook: env:WARROOM_TEST_HOOK resolves\n" in result.stdout
    assert ("  FAIL rollback.steps[1].http.headers.Authorization: environment variable WARROOM_TEST_STATUS is not set "
            "(referenced as env:WARROOM_TEST_STATUS); export it before starting warroom\n") in result.stdout
    assert ("  FAIL notify[0].url: keyring:warroom-test/missing-notify: no such entry in the keyring; "
            "store it with `warroom secret set keyring:warroom-test/missing-notify`\n") in result.stdout
    assert "check: 2 problem(s)" in result.stdout
    assert "rollback sets: realtime-features off, websocket_simple off, health_simple 100%" in result.stdout


def test_plans_that_would_fail_at_run_time_fail_check_drill_and_run_first(tmp_path):
    # A rollback that leaves a flag on (the audit's drill then passed with the flag at 5 %).
    plan = sample_variant(tmp_path, rollback={"flags": {"realtime-features": False}})
    for verb in (["check"], ["drill", "--headless"], ["run", "--headless", "--speed", "max"]):
        result = warroom(verb[0], str(plan), *verb[1:])
        assert result.returncode == 1, result.stdout
        assert "rollback.flags: flag 'websocket_simple' is set by phase 1 'Beta 5%' (line " in result.stderr
    # 0.1 % on Unleash: refused before any run, not four attempts and a pause on launch day.
    unleash = {"provider": "unleash", "url": "http://127.0.0.1:4242", "token": "env:UNLEASH_TOKEN"}
    phases = [{"name": "Canary 0.1%", "flags": {"realtime-features": 0.1}}]
    plan = sample_variant(tmp_path, flag_provider=unleash, phases=phases, rollback={}, guardrails=[])
    result = warroom("check", str(plan))
    assert result.returncode == 1
    assert ("phases[0].flags.realtime-features: phase 1 'Canary 0.1%' sets 'realtime-features' to 0.1%: "
            "the unleash provider sets whole percents, so 0.1% cannot be set (write 0 or 1)") in result.stderr


def test_tick_by_number_when_items_have_ids(tmp_path):
    phases = [{"name": "Beta 5%", "flags": {"realtime-features": 5, "websocket_simple": 5, "health_simple": True},
               "checklist": [{"text": "Dashboards checked", "id": "dashboards", "required": True},
                             {"text": "Support briefed", "id": "support"}]}]
    plan = sample_variant(tmp_path, phases=phases, automation={"step_up": "manual"})
    warroom("up", str(plan), check=True)
    warroom("step", str(plan), check=True)
    assert warroom("tick", str(plan), "2", check=True).stdout == "ticked: Support briefed\n"
    assert warroom("tick", str(plan), "dashboards", check=True).stdout == "ticked: Dashboards checked\n"
    refused = warroom("tick", str(plan), "3")
    assert refused.returncode == 6 and "items: 1 (dashboards), 2 (support)" in refused.stderr


def test_journal_without_a_plan_reads_the_newest_state_database(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "XDG_STATE_HOME": str(tmp_path / "state")}
    (tmp_path / "tmp").mkdir()

    def journal_alone(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*WARROOM, *args], capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)

    nothing = journal_alone("journal")
    assert nothing.returncode == 2 and "no state database found" in nothing.stderr
    # The demo runs in a fresh temp folder and, on leaving, names its journal; `warroom journal` alone finds it too.
    assert journal_alone("run", "--headless", "--speed", "max", "--for", "30s").returncode == 0
    demo_db = next((tmp_path / "tmp").glob("warroom-demo-*/demo.sqlite"))
    found = journal_alone("journal", "--limit", "2")
    assert found.returncode == 0 and f"reading the newest state database, {demo_db}" in found.stderr
    assert found.stdout.splitlines()[-1].split()[1] == "engine.left"  # the run ended with the demo at phase 1: said loudly
    assert journal_alone("report").returncode == 0
