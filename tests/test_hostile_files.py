"""Files a user can point warroom at by mistake (or on purpose): refused with a message naming
the file, without reading them until memory runs out and without quoting what they hold."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from warroom.drills.scenario import load_scenario
from warroom.plan.load import load_plan, parse_plan
from warroom.plan.yamlfile import PlanError

WARROOM = [sys.executable, "-m", "warroom"]
PLAN = textwrap.dedent("""
    rollout: {name: x, environment: drill}
    sources: {sim: {type: simulator, faults_file: FAULTS}}
    flag_provider: {provider: local}
    phases: [{name: a, flags: {f: 5}}]
    """)


def bounded(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """warroom in a child limited to 1 GB of address space: a reader without bounds dies, not the machine."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run([*WARROOM, *args], capture_output=True, text=True, timeout=120, preexec_fn=limit,
                          stdin=subprocess.DEVNULL, cwd=cwd)


def messages(call) -> list[str]:
    with pytest.raises(PlanError) as info:
        call()
    return [str(p) for p in info.value.problems]


def test_dev_zero_as_plan_faults_file_and_scenario_is_refused_by_name(tmp_path):
    run = bounded("check", "/dev/zero")
    assert run.returncode == 1, run.stderr[-2000:]
    assert run.stderr.strip() == "/dev/zero:1:1: not a regular file (a folder, device or pipe): give the path of the plan's YAML file"
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.replace("FAULTS", "/dev/zero"))
    run = bounded("check", str(plan))
    assert run.returncode == 1 and "/dev/zero:1:1: not a regular file" in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert messages(lambda: load_scenario("/dev/zero")) == [
        "/dev/zero:1:1: not a regular file (a folder, device or pipe): give the path of the scenario's YAML file"]


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "plan.yaml"
    os.mkfifo(fifo)
    run = bounded("check", str(fifo))  # would block in open() forever; the timeout fails the test
    assert run.returncode == 1 and f"{fifo}:1:1: not a regular file" in run.stderr, run.stderr


def test_a_huge_file_is_not_read_past_the_bound(tmp_path):
    big = tmp_path / "huge.yaml"
    with big.open("wb") as f:
        f.truncate(4 << 30)  # 4 GB (sparse): reading it whole would exceed the child's 1 GB
    run = bounded("check", str(big))
    assert run.returncode == 1, run.stderr[-2000:]
    assert run.stderr.strip() == f"{big}:1:1: larger than 1 MB: not a plan (is this the right file?)"
    assert messages(lambda: load_plan(tmp_path)) == [
        f"{tmp_path}:1:1: not a regular file (a folder, device or pipe): give the path of the plan's YAML file"]


def test_alias_bombs_stop_at_the_bound_with_a_located_message(tmp_path):
    # 9^6 ≈ 530,000 values from 300 bytes (the audit's 9^9 ran `check` past a minute).
    levels = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcde", "bcdef", strict=True):
        levels.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    text = "\n".join(levels) + "\n"
    assert messages(lambda: parse_plan(text, "bomb.yaml")) == [
        "bomb.yaml:1:1: more than 50,000 values once its aliases (*name) are expanded; write the values out instead of nesting aliases"]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(text)
    run = bounded("check", str(bomb))
    assert run.returncode == 1 and "more than 50,000 values" in run.stderr
    # An alias inside the value it names is a cycle, not a RecursionError.
    assert messages(lambda: parse_plan("a: &a [1, *a]\n", "cycle.yaml")) == [
        "cycle.yaml:1:1: nested too deeply, or an alias (*name) inside the value it names"]
    # Aliases used as a plan author would (a shared mapping) still work.
    plan = parse_plan(textwrap.dedent("""
        rollout: {name: x, environment: drill}
        sources: {sim: {type: simulator}}
        flag_provider: {provider: local}
        phases:
          - {name: a, flags: &flags {f: 5, g: 5}}
          - {name: b, flags: *flags, hold: 1m}
        """), "plan.yaml")
    assert plan.phases[1].flags == plan.phases[0].flags


def test_a_faults_file_that_is_no_fault_schedule_is_never_quoted(tmp_path):
    # /etc/hostname, /etc/passwd, a token file: YAML reads them as one plain string.
    secret = tmp_path / "hostname"
    secret.write_text("db-primary-7f3a.internal.example\n")
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.replace("FAULTS", str(secret)))
    found = messages(lambda: load_plan(plan))
    assert found == [f"{secret}:1:1: not a fault schedule: expected a list of faults, or a mapping with `faults:`"]
    run = bounded("check", str(plan))
    assert run.returncode == 1 and "db-primary" not in run.stderr + run.stdout
    for text in ("root:x:0:0:root:/root:/bin/bash\n", "key: s3cr3t-value\n", "42\n"):
        secret.write_text(text)
        assert not any("s3cr3t" in m or "root:x" in m or "(got" in m for m in messages(lambda: load_plan(plan)))
