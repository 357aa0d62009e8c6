"""Commands on one bastion with a SQLite state: each person's `warroom approve`, `pause` or `step` reaches
the engine over its local socket, where the kernel names the sender (SO_PEERCRED's uid, and the audit login
uid PAM set at their SSH login, which sudo keeps) — never LOGNAME, USER or SUDO_USER, nor a name written
into the state file's commands table, which anyone who may write the file can write."""

from __future__ import annotations

import grp
import json
import os
import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import BASE_PLAN
from tests.support.logins import SYSTEM_PYTHON, Bastion, bastion
from tests.support.waiting import until
from warroom.core.snapshot import JournalEntry
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


def up(plan: Path) -> None:
    """The engine, started as root in the launch's folder with the group-writable umask (nothing chmod-ed after)."""
    started = as_root("up", str(plan))
    assert started.returncode == 0, started.stdout + started.stderr


def journaled(people: Bastion, kind: str) -> list[JournalEntry]:
    store = open_store(people.folder / "state.sqlite", create=False, readonly=True)
    try:
        return [e for e in store.entries() if e.kind == kind]
    finally:
        store.close()


def test_approvals_over_ssh_are_journaled_as_the_kernel_names_each_person(people):
    carol, dave, launch = (people.accounts[p] for p in ("carol", "dave", "launch"))
    plan = write_plan(people)
    up(plan)
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
    up(plan)
    try:
        as_root("step", str(plan))
        # Another "host" (a name the engine does not listen under): the store alone cannot say who this is.
        elsewhere = people.ssh("carol", people.warroom("approve", str(plan), env="WARROOM_HOSTNAME=laptop"))
        assert elsewhere.returncode == 6, elsewhere.stdout + elsewhere.stderr
        assert "no engine of this rollout listens on this host (laptop): with a SQLite state, approve on the host" in elsewhere.stderr
    finally:
        as_root("down", str(plan), "--force")


def test_the_state_file_follows_the_umask_so_the_launchs_group_can_sign_off(people):
    plan = write_plan(people)
    up(plan)
    try:
        files = {p.name: p.stat() for p in people.folder.glob("state.sqlite*")}
        assert {"state.sqlite", "state.sqlite-wal"} <= set(files)
        group = grp.getgrnam(people.group).gr_gid
        for name, info in files.items():  # umask 002 in a setgid folder: the launch's group may write them all
            assert stat.S_IMODE(info.st_mode) == 0o664 and info.st_gid == group, (name, oct(info.st_mode), info.st_gid)
        as_root("step", str(plan))
        signed = people.ssh("carol", people.warroom("approve", str(plan)))
        assert signed.returncode == 0 and "approved; still awaiting security" in signed.stdout, signed.stdout + signed.stderr
    finally:
        as_root("down", str(plan), "--force")


def test_commands_over_ssh_are_journaled_as_the_kernel_names_the_sender_and_a_row_naming_another_is_shown_declared(people):
    carol, dave = people.accounts["carol"], people.accounts["dave"]
    data = yaml.safe_load(BASE_PLAN)
    data["automation"] = {"step_up": "manual"}
    path = people.folder / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    os.chmod(path, 0o664)
    up(path)
    try:
        stepped = as_root("step", str(path))
        assert stepped.returncode == 0, stepped.stdout + stepped.stderr
        # carol pauses with dave's name in every variable a client could read: the kernel says carol.
        paused = people.ssh("carol", people.warroom("pause", str(path), "--reason", "p95", env=f"LOGNAME={dave} USER={dave} SUDO_USER={dave}"))
        assert paused.returncode == 0, paused.stdout + paused.stderr
        [pause] = journaled(people, "pause")
        assert pause.data["actor"]["user"] == carol and pause.data["actor"]["proof"] == f"kernel: uid {people.uid('carol')} ({carol})"
        assert pause.actor.startswith(carol) and "declared" not in pause.actor
        resumed = people.ssh("carol", people.warroom("resume", str(path)))
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr

        # carol may write the state file (her group's), so she can write a row under dave's name straight into its
        # commands table: the engine runs it (a pause is never refused) but never as dave's — shown as declared.
        forged = json.dumps({"user": dave, "host": "bastion", "proof": f"kernel: uid {people.uid('dave')} ({dave})"})
        script = ("import sqlite3,sys,time; db=sqlite3.connect(sys.argv[1]); "
                  "db.execute(\"INSERT INTO commands (created, verb, args, actor) VALUES (?, 'pause', '{}', ?)\", (time.time(), sys.argv[2])); "
                  "db.commit()")
        wrote = people.ssh("carol", f"{SYSTEM_PYTHON} -c {shlex.quote(script)} {people.folder / 'state.sqlite'} {shlex.quote(forged)}")
        assert wrote.returncode == 0, wrote.stdout + wrote.stderr
        until("the forged pause is run", lambda: len(journaled(people, "pause")) == 2)
        forged_pause = journaled(people, "pause")[-1]
        assert forged_pause.data["actor"]["user"] == dave and forged_pause.data["actor"].get("unproven") is True
        assert "proof" not in forged_pause.data["actor"]
        assert forged_pause.actor == f"{dave} (declared, not proven)@bastion", forged_pause.actor
        shown = as_root("journal", str(path))
        assert f"{dave} (declared, not proven)" in shown.stdout, shown.stdout
    finally:
        as_root("down", str(path), "--force")


def test_a_rollback_that_must_start_its_engine_runs_and_is_journaled_as_the_kernel_names_its_sender(people):
    plan = write_plan(people)
    rolled = as_root("rollback", str(plan), "--reason", "no engine yet")  # LOGNAME=alice: the uid's account, not alice
    try:
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        [intent] = journaled(people, "rollback.intent")
        # The engine it started runs as root and was told which row is the rollback's: the kernel's word, not the row's.
        assert intent.data["actor"]["user"] == "root" and not intent.data["actor"].get("unproven")
        assert intent.data["actor"]["proof"].startswith("kernel: uid 0 (root)"), intent.data["actor"]
        assert intent.actor.startswith("root@"), intent.actor
        until("the rollback is confirmed", lambda: journaled(people, "rollback.outcome"))
    finally:
        as_root("down", str(plan), "--force")
