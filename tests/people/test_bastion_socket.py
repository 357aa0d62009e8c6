"""Sign-offs on one bastion with a SQLite state: each person's `warroom approve` reaches the engine over
its local socket, where the kernel names the sender (SO_PEERCRED's uid, and the audit login uid PAM set
at their SSH login, which sudo keeps) — never LOGNAME, USER or SUDO_USER."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import BASE_PLAN
from tests.support.logins import Bastion, bastion
from tests.support.waiting import until
from warroom.store import open_store

WARROOM = [sys.executable, "-m", "warroom"]


@pytest.fixture
def people() -> Iterator[Bastion]:
    with bastion("carol", "dave", "launch") as place:
        yield place


def as_root(*args: str, umask: str = "002") -> subprocess.CompletedProcess[str]:
    """warroom as root, with the group-writable umask the launch's folder is run with (its people write the state)."""
    return subprocess.run(["sh", "-c", f"umask {umask} && exec \"$@\"", "sh", *WARROOM, *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "LOGNAME": "alice", "USER": "alice", "SUDO_USER": "alice"})


def write_plan(place: Bastion) -> Path:
    data = yaml.safe_load(BASE_PLAN)
    data["roles"] = {"security": {"members": [place.accounts["carol"], place.accounts["dave"]]}}
    data["phases"][0]["approvals"] = {"roles": {"security": 2}, "timeout": "30m"}
    path = place.folder / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    os.chmod(path, 0o664)
    return path


def up(people: Bastion, plan: Path) -> None:
    """The engine, and its state writable by the launch's group as the README says to set it up (SQLite creates
    its files 0644 whatever the umask; its -wal and -shm files take the database file's mode)."""
    assert as_root("up", str(plan)).returncode == 0
    for path in people.folder.glob("state.sqlite*"):
        os.chmod(path, 0o664)


def test_approvals_over_ssh_are_journaled_as_the_kernel_names_each_person(people):
    carol, dave, launch = (people.accounts[p] for p in ("carol", "dave", "launch"))
    plan = write_plan(people)
    up(people, plan)
    try:
        asked = as_root("step", str(plan))
        assert asked.returncode == 0 and f"awaiting security×2 ({carol}|{dave})" in asked.stdout, asked.stdout + asked.stderr
        spoofed = people.ssh("carol", people.warroom("approve", str(plan), "--note", "dashboards green",
                                                     env=f"LOGNAME={dave} USER={dave} SUDO_USER={dave}"))
        assert spoofed.returncode == 0 and f"approved; still awaiting security ({dave})" in spoofed.stdout, spoofed.stdout + spoofed.stderr
        # dave logs in and works as the shared `launch` account, as through sudo: the login uid still names dave.
        shared = subprocess.run(
            ["sh", "-c", f"echo {people.uid('dave')} > /proc/self/loginuid && exec runuser -u {launch} -- sh -c \"$0\"",
             people.warroom("approve", str(plan), "--note", "pen test closed", env="LOGNAME=root")], capture_output=True, text=True, timeout=60)
        assert shared.returncode == 0 and "sign-off complete" in shared.stdout, shared.stdout + shared.stderr

        store = open_store(people.folder / "state.sqlite", create=False)
        until("the step the sign-off allowed", lambda: store.load_state()[1].get("phase") == 1)
        given = [e.data["actor"] for e in store.entries() if e.kind == "approval.given"]
        assert [(a["user"], a["proof"]) for a in given] == [
            (carol, f"kernel: uid {people.uid('carol')} ({carol})"),
            (dave, f"kernel: uid {people.uid('launch')} ({launch}), login uid {people.uid('dave')} ({dave})")]
        assert given[0]["ssh_client"] == "127.0.0.1"  # where carol logged in from: context, never identity

        # A pause from root with a spoofed LOGNAME: the account the kernel says, not alice.
        assert as_root("pause", str(plan), "--reason", "look at p95").returncode == 0
        pause = [e for e in store.entries() if e.kind == "pause"][-1]
        assert pause.data["actor"]["user"] == "root" and pause.actor.startswith("root")
        store.close()
    finally:
        as_root("down", str(plan), "--force")


def test_a_sign_off_from_another_host_than_the_engines_is_refused_with_what_to_do(people, monkeypatch):
    plan = write_plan(people)
    up(people, plan)
    try:
        as_root("step", str(plan))
        # Another "host" (a name the engine does not listen under): the store alone cannot say who this is.
        elsewhere = people.ssh("carol", people.warroom("approve", str(plan), env="WARROOM_HOSTNAME=laptop"))
        assert elsewhere.returncode == 6, elsewhere.stdout + elsewhere.stderr
        assert "no engine of this rollout listens on this host (laptop): with a SQLite state, approve on the host" in elsewhere.stderr
    finally:
        as_root("down", str(plan), "--force")
