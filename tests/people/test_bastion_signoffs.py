"""Sign-offs by real people: Unix accounts logged in over SSH (Debian's openssh-server on 127.0.0.1),
each approving with the warroom command line as themselves. With PostgreSQL and peer authentication
the database role is the OS account the kernel proved to the server; a spoofed LOGNAME changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.conftest import BASE_PLAN, PG_PASSWORD
from tests.support.logins import Bastion, bastion
from tests.support.servers import grant_operators, operator_roles
from tests.support.waiting import until
from warroom.plan.state import PostgresState
from warroom.store import open_store

WARROOM = [sys.executable, "-m", "warroom"]


@pytest.fixture
def people() -> Iterator[Bastion]:
    with bastion("carol", "dave", "bob") as place:
        yield place


def plan(folder: Path, state: dict, members: list[str], **approval) -> Path:
    data = yaml.safe_load(BASE_PLAN)
    data["state"] = state
    data["roles"] = {"security": {"members": members}}
    data["phases"][0]["approvals"] = {"roles": {"security": 2}, **approval}
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_two_operators_approve_over_ssh_as_their_own_database_roles(people, pg_state, tmp_path, monkeypatch):
    carol, dave, bob = (people.accounts[p] for p in ("carol", "dave", "bob"))
    url = urlsplit(pg_state.url)
    port, db = url.port or 5432, url.path.lstrip("/")
    rollout = f"bastion-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))  # where a PostgreSQL engine keeps its log
    # The engine's copy: the store's owner, by password. The operators' copy: the same plan, their own roles by peer.
    engine_plan = plan(tmp_path, {"url": pg_state.url, "password": f"env:{PG_PASSWORD}", "rollout": rollout}, [carol, dave])
    ops_plan = plan(people.folder, {"url": f"postgresql://%2Fvar%2Frun%2Fpostgresql:{port}/{db}", "rollout": rollout}, [carol, dave])
    os.chmod(ops_plan, 0o644)
    with operator_roles(port, db, carol, dave, bob):  # no passwords: peer authentication names the OS account
        try:
            subprocess.run([*WARROOM, "up", str(engine_plan)], check=True, capture_output=True, timeout=60)
            grant_operators(port, db, carol, dave, bob)
            signed_off_over_ssh(people, engine_plan, ops_plan, pg_state, rollout)
        finally:
            subprocess.run([*WARROOM, "down", str(engine_plan), "--force"], capture_output=True, timeout=60)


def signed_off_over_ssh(people: Bastion, engine_plan: Path, ops_plan: Path, pg_state: PostgresState, rollout: str) -> None:
    carol, dave, bob = (people.accounts[p] for p in ("carol", "dave", "bob"))
    asked = subprocess.run([*WARROOM, "step", str(engine_plan)], capture_output=True, text=True, timeout=60)
    assert asked.returncode == 0 and f"awaiting security×2 ({carol}|{dave})" in asked.stdout, asked.stdout + asked.stderr

    spoofed = people.ssh("carol", people.warroom("approve", str(ops_plan), "--note", "dashboards green",
                                                 env=f"LOGNAME={dave} USER={dave} SUDO_USER={dave}"))
    assert spoofed.returncode == 0 and f"approved; still awaiting security ({dave})" in spoofed.stdout, spoofed.stdout + spoofed.stderr
    outsider = people.ssh("bob", people.warroom("approve", str(ops_plan)))
    assert outsider.returncode == 6 and f"{bob} is in none of the roles asked" in outsider.stderr, outsider.stdout + outsider.stderr
    second = people.ssh("dave", people.warroom("approve", str(ops_plan), "--note", "pen test closed"))
    assert second.returncode == 0 and "sign-off complete" in second.stdout, second.stdout + second.stderr

    store = open_store(PostgresState(url=pg_state.url, password=f"env:{PG_PASSWORD}", rollout=rollout), create=False)
    try:
        until("the step the sign-off allowed", lambda: store.load_state()[1].get("phase") == 1)
        given = [e for e in store.entries() if e.kind == "approval.given"]
        assert [(e.data["actor"]["user"], e.data["actor"]["proof"]) for e in given] == [
            (carol, f"database role {carol}"), (dave, f"database role {dave}")]
        assert all(e.data["actor"]["ssh_client"] == "127.0.0.1" for e in given)  # where they logged in from: context
        assert [e.data.get("to_phase") for e in store.entries() if e.kind == "step.intent"] == [1]
    finally:
        store.close()
