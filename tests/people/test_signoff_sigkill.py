"""SIGKILL of the engine between a sign-off and the step it allows: the approval is not lost and the
step happens exactly once, when the next engine finds it (real processes, PostgreSQL, operator roles)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from tests.conftest import BASE_PLAN, PG_PASSWORD
from tests.support.servers import grant_operators, operator_roles
from tests.support.waiting import until
from warroom.plan.state import PostgresState
from warroom.store import Store, open_store

WARROOM = [sys.executable, "-m", "warroom"]


def write(folder: Path, state: dict, member: str) -> Path:
    data = yaml.safe_load(BASE_PLAN)
    data["state"] = state
    data["roles"] = {"security": {"members": [member]}}
    data["phases"][0].update(hold="0s", gates=[], checklist=[])
    data["phases"][1]["checklist"] = [{"text": "Capacity reviewed", "required": True}]
    data["phases"][1]["hold"] = "0s"
    data["phases"][2]["approvals"] = {"roles": {"security": 1}}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run(plan: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WARROOM, args[0], str(plan), *args[1:]], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_a_grant_survives_sigkill_and_its_step_happens_once(pg_state, tmp_path, monkeypatch):
    url = urlsplit(pg_state.url)
    port, db = url.port or 5432, url.path.lstrip("/")
    rollout, role = f"killed-{uuid.uuid4().hex[:8]}", f"sec_{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setenv("WARROOM_TEST_SEC_PW", f"{role}-pw")
    engine_plan = write(tmp_path / "engine", {"url": pg_state.url, "password": f"env:{PG_PASSWORD}", "rollout": rollout}, role)
    security_plan = write(tmp_path / "security", {"url": f"postgresql://{role}@127.0.0.1:{port}/{db}", "password": "env:WARROOM_TEST_SEC_PW",
                                                  "rollout": rollout}, role)
    with operator_roles(port, db, role, password=lambda name: f"{name}-pw"):
        store = open_store(PostgresState(url=pg_state.url, password=f"env:{PG_PASSWORD}", rollout=rollout))
        try:
            assert run(engine_plan, "up").returncode == 0
            grant_operators(port, db, role)
            granted_then_killed(engine_plan, security_plan, store)
        finally:
            run(engine_plan, "down", "--force")
            store.close()


def granted_then_killed(engine_plan: Path, security_plan: Path, store: Store) -> None:
    for step in ("step", "step"):  # into phase 1, then into phase 2 (no sign-off asked for either)
        assert run(engine_plan, step).returncode == 0
    until("phase 2", lambda: store.load_state()[1].get("phase") == 2)
    assert run(engine_plan, "tick", "1").returncode == 0
    asked = run(engine_plan, "step")
    assert asked.returncode == 0 and "awaiting security" in asked.stdout, asked.stdout + asked.stderr
    # The step's other condition is taken back, so the grant cannot step at once: the window a crash falls into.
    assert run(engine_plan, "tick", "1", "--undo").returncode == 0
    approved = run(security_plan, "approve", "--note", "ok")
    assert approved.returncode == 0 and "sign-off complete" in approved.stdout, approved.stdout + approved.stderr
    assert store.load_state()[1]["approval"]["status"] == "granted" and store.load_state()[1]["phase"] == 2

    pid = json.loads(run(engine_plan, "status", "--json").stdout)["engine"]["pid"]
    os.kill(pid, signal.SIGKILL)
    until("the engine gone", lambda: not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text())

    assert run(engine_plan, "up").returncode == 0
    assert run(engine_plan, "tick", "1").returncode == 0
    until("the step the grant allows", lambda: store.load_state()[1].get("phase") == 3, timeout=30)
    intents = [e.data.get("to_phase") for e in store.entries() if e.kind == "step.intent"]
    assert intents == [1, 2, 3]
    assert store.load_state()[1]["approval"]["status"] == "used"
    assert run(engine_plan, "verify").returncode == 0
