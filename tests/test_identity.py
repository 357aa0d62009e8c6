"""Who acted, as the kernel proves it: the uid, and the login uid that names the person behind a shared account."""

from __future__ import annotations

import os
import subprocess
import sys

from warroom.core.identity import Actor, current_actor, from_kernel


def test_a_client_names_itself_by_its_uid_whatever_LOGNAME_USER_and_SUDO_USER_say():
    code = "from warroom.core.identity import current_actor; print(current_actor().user)"
    env = {**os.environ, "LOGNAME": "alice", "USER": "alice", "SUDO_USER": "alice"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert out == current_actor().user != "alice"


def test_the_person_behind_a_shared_account_is_the_login_uids():
    declared = Actor(user="alice", ssh_client="10.0.0.7", tty="pts/3")
    nobody = 65534
    behind = from_kernel(declared, uid=0, loginuid=nobody)
    assert (behind.user, behind.ssh_client, behind.tty) == ("nobody", "10.0.0.7", "pts/3")
    assert behind.proof == "kernel: uid 0 (root), login uid 65534 (nobody)"
    alone = from_kernel(declared, uid=0, loginuid=None)
    assert alone.user == "root" and alone.proof == "kernel: uid 0 (root), no login uid set (not a login session)"
