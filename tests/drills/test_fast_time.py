"""Fast time stays in drills, and faults given to a run are never silently dropped.

`--speed max` on a staging plan's real state used to write a future clock into its
journal (a report spanning "2h09m" of a minute's run) and, with automatic step-up,
really moved its flags. `run --faults FILE` on a plan without a simulator did nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from warroom.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample-config.yaml"
STAGING_PROMETHEUS = ROOT / "examples" / "staging-prometheus.yaml"


@pytest.mark.parametrize("argv", [
    ["run", str(SAMPLE), "--headless", "--speed", "max", "--until-done"],
    ["run", str(SAMPLE), "--speed", "60"],  # the console through `run`
    [str(SAMPLE), "--speed", "10"],  # the console
])
def test_fast_time_is_refused_on_a_staging_plans_real_state(argv, tmp_path, capsys):
    state = tmp_path / "state.sqlite"
    assert main([*argv, "--state", str(state)]) == 2
    err = capsys.readouterr().err
    assert f"is refused: {SAMPLE}: rollout.environment is staging, so its state and flags are real" in err
    assert f"Rehearse it fast with `warroom drill {SAMPLE} --speed" in err
    assert not state.exists()  # nothing was written: no journal with a future clock


def test_fast_time_is_refused_on_production_and_allowed_in_a_drill(tmp_path, capsys):
    production = tmp_path / "plan.yaml"
    production.write_text(SAMPLE.read_text().replace("environment: staging", "environment: production"))
    assert main(["run", str(production), "--headless", "--speed", "max", "--state", str(tmp_path / "p.sqlite")]) == 2
    assert "rollout.environment is production" in capsys.readouterr().err
    # The same plan drills fast in its own state and a scratch flag file.
    assert main(["drill", str(production), "--headless", "--speed", "max", "--scenario", "canary-error-spike",
                 "--state", str(tmp_path / "drill" / "state.sqlite")]) == 0
    assert json.loads((tmp_path / "drill" / "flags.json").read_text())["flags"]["realtime-features"]["enabled"] is False
    assert not (tmp_path / ".warroom").exists()  # the plan's own flag store was never touched


def test_check_says_whether_fast_time_is_allowed(tmp_path, capsys):
    assert main(["check", str(SAMPLE), "--state", str(tmp_path / "s.sqlite")]) == 0
    assert ("fast time (--speed other than 1): refused for this plan: environment staging means real state and "
            "flags; `warroom drill` rehearses it fast in its own state") in capsys.readouterr().out
    assert main(["check", "--state", str(tmp_path / "demo.sqlite")]) == 0  # the built-in demo
    assert "fast time (--speed other than 1): allowed (environment drill)" in capsys.readouterr().out


def test_run_faults_on_a_plan_without_a_simulator_is_refused_not_ignored(tmp_path, capsys):
    faults = tmp_path / "faults.yaml"
    faults.write_text("- {metric: error_rate, phase: 1, value: 0.5}\n")
    plan = tmp_path / "staging-prometheus.yaml"
    shutil.copy(STAGING_PROMETHEUS, plan)
    assert main(["run", str(plan), "--headless", "--faults", str(faults), "--state", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err
    assert f"--faults needs a simulator source, and {plan} has none (its sources: service (prometheus))" in err
    assert "`warroom drill PLAN --scenario FILE`" in err and "POST /fault" in err
    assert not (tmp_path / "s.sqlite").exists()
