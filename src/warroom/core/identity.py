"""Who is acting: the person, what proves it, and the SSH client address and tty as context.

A client names itself by the uid it runs as (never `$USER`, `$LOGNAME` or `$SUDO_USER`, which
anyone can set); the engine replaces that with what it can prove — the kernel's word on a
local socket (SO_PEERCRED's uid, and the audit login uid that names the person behind a
shared account) or the database's (the session's role) — and says which in `proof`. An
actor with no `proof` is as declared: it may pause or roll back, never sign off; one the engine
took on a client's word alone (a row in a SQLite store's commands table, which anyone who may
write the file can write under any name) is `unproven`, and its label says so wherever it is shown.
"""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Actor:
    user: str
    host: str = ""
    ssh_client: str = ""
    tty: str = ""
    automatic: bool = False
    proof: str = ""  # how `user` is known: "kernel: uid 0 (root), login uid 1001 (carol)", "database role carol"; "": declared
    unproven: bool = False  # the engine acted on this name as the client wrote it, with nothing to prove it

    def label(self) -> str:
        if self.automatic:
            return "warroom (automatic)"
        text = self.user + (f" {UNPROVEN}" if self.unproven else "")  # before where from: `person()` keeps it
        if self.ssh_client:
            text += f" from {self.ssh_client}"
        elif self.host:
            text += f"@{self.host}"
        if self.tty:
            text += f" on {self.tty}"
        return text

    def to_json(self) -> dict[str, Any]:
        body = {"user": self.user, "host": self.host, "ssh_client": self.ssh_client, "tty": self.tty, "automatic": self.automatic}
        if self.proof:
            body["proof"] = self.proof
        if self.unproven:
            body["unproven"] = True
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Actor:
        return cls(str(data.get("user") or ""), str(data.get("host") or ""), str(data.get("ssh_client") or ""),
                   str(data.get("tty") or ""), bool(data.get("automatic")), str(data.get("proof") or ""), bool(data.get("unproven")))

    def declared(self) -> Actor:
        """As a client's word, taken with nothing to prove it: whatever proof it claims is not one (only the
        engine proves), and it is shown as declared."""
        return Actor(self.user, self.host, self.ssh_client, self.tty, unproven=True)


UNPROVEN = "(declared, not proven)"  # how a name taken on a client's word alone is shown: journal, console, page, reports


AUTOMATIC = Actor(user="warroom", automatic=True)


def account_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"


def current_actor() -> Actor:
    # The kernel's uid, not getpass (which reads LOGNAME and USER first); the person behind it by the login uid.
    user = from_kernel(Actor(""), os.getuid(), login_uid(os.getpid())).user
    # SSH_CONNECTION is "client_ip client_port server_ip server_port": context, never identity.
    ssh = (os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_CLIENT") or "").split()
    tty = ""
    for fd in (0, 1, 2):
        try:
            tty = os.ttyname(fd).removeprefix("/dev/")
            break
        except OSError:
            continue
    return Actor(user=user, host=socket.gethostname(), ssh_client=ssh[0] if ssh else "", tty=tty)


def person(label: str) -> str:
    """Who an actor label names, without where they connected from (`alice from 10.0.0.7 on pts/3` → `alice`):
    what people off the bastion are told, since hosts and addresses are the inside of the war room."""
    if label == AUTOMATIC.label():
        return label
    return label.split(" from ", 1)[0].split(" on ", 1)[0].split("@", 1)[0]


UNSET_LOGINUID = 4294967295  # /proc/PID/loginuid of a process no login session started (a daemon, a container's shell)


def login_uid(pid: int) -> int | None:
    """The audit login uid of a process: set by PAM at login (SSH), kept across sudo and su, not writable
    by the user; None where no login set it."""
    try:
        value = int(Path(f"/proc/{pid}/loginuid").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if value == UNSET_LOGINUID else value


def from_kernel(declared: Actor, uid: int, loginuid: int | None) -> Actor:
    """The sender of a local connection as the kernel proves it: the person is the login uid's account
    (who logged in, even through `sudo` to a shared account), else the uid's; never the declared name."""
    account = account_name(uid)
    if loginuid is not None and loginuid != uid:
        person = account_name(loginuid)
        proof = f"kernel: uid {uid} ({account}), login uid {loginuid} ({person})"
    else:
        person = account
        proof = f"kernel: uid {uid} ({account})" + ("" if loginuid is not None else ", no login uid set (not a login session)")
    return Actor(person, declared.host, declared.ssh_client, declared.tty, proof=proof)


def from_database(declared: Actor, role: str) -> Actor:
    """The sender of a command the database recorded under the session's role."""
    return Actor(role, declared.host, declared.ssh_client, declared.tty, proof=f"database role {role}")
