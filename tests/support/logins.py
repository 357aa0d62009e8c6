"""Real people on one bastion: Unix accounts made with `useradd`, logging in over Debian's
openssh-server on 127.0.0.1 (its PAM session sets each login's audit uid, as on a real bastion).

Accounts and the group they share are made for one test and removed after it. Each person runs
warroom from this worktree through the system's Python 3.11 (the venv's interpreter lives under
/root, which they cannot enter; its packages they can read).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.helpers import free_port, require_binary
from tests.support.waiting import until

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
SYSTEM_PYTHON = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"


@dataclass
class Bastion:
    folder: Path  # group-writable: where the launch's plan, state and flags live
    group: str
    accounts: dict[str, str]  # person -> account name
    port: int
    key: Path

    def warroom(self, *args: str, env: str = "") -> str:
        """The shell command that runs warroom as whoever runs it (`env`: assignments put before it)."""
        path = f"PYTHONPATH={ROOT / 'src'}:{SITE}"
        return f"cd {shlex.quote(str(self.folder))} && {env} {path} {SYSTEM_PYTHON} -m warroom {shlex.join(args)}"

    def ssh(self, person: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`command` in a real SSH login of `person` (audit login uid set by PAM)."""
        return subprocess.run(
            ["ssh", "-i", str(self.key), "-p", str(self.port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", f"{self.accounts[person]}@127.0.0.1", command],
            capture_output=True, text=True, timeout=timeout)

    def uid(self, person: str) -> int:
        return pwd.getpwnam(self.accounts[person]).pw_uid


@contextlib.contextmanager
def bastion(*people: str) -> Iterator[Bastion]:
    """Accounts for `people` (and their shared group) with sshd on a free loopback port, and a launch folder
    they share (under /tmp: pytest's own folders are closed to other users); all removed afterwards."""
    sshd = require_binary("sshd")
    require_binary("ssh")
    require_binary("useradd")
    if os.geteuid() != 0:
        raise RuntimeError("making Unix accounts needs root (the tests run as root in CI)")
    tag = uuid.uuid4().hex[:6]
    folder = Path(tempfile.mkdtemp(prefix="warroom-bastion-"))
    group = f"wrgrp{tag}"
    accounts = {p: f"wr{p[:10]}{tag}" for p in people}
    ssh_dir = folder / "sshd"
    (ssh_dir / "keys").mkdir(parents=True)
    subprocess.run(["groupadd", group], check=True)
    made: list[str] = []
    proc: subprocess.Popen[bytes] | None = None
    try:
        for account in accounts.values():
            subprocess.run(["useradd", "-M", "-d", str(folder), "-s", "/bin/sh", "-G", group, account], check=True)
            made.append(account)
        for name in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh_dir / name)], check=True)
        for account in accounts.values():
            (ssh_dir / "keys" / account).write_text((ssh_dir / "client.pub").read_text())
        port = free_port()
        (ssh_dir / "config").write_text("\n".join([
            f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {ssh_dir / 'host'}", f"PidFile {ssh_dir / 'pid'}",
            f"AuthorizedKeysFile {ssh_dir / 'keys'}/%u", "StrictModes no", "UsePAM yes", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "PermitRootLogin no", "PrintMotd no", ""]))
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
        proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(ssh_dir / "config")], stderr=subprocess.PIPE)
        # The launch's folder: the people's group may read and write what warroom keeps there.
        gid = grp.getgrnam(group).gr_gid
        os.chown(folder, 0, gid)
        os.chmod(folder, 0o2775)
        place = Bastion(folder, group, accounts, port, ssh_dir / "client")
        until("sshd answers", lambda: place.ssh(people[0], "true", timeout=10).returncode == 0, timeout=30, every=0.2)
        yield place
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        for account in made:
            subprocess.run(["userdel", account], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
