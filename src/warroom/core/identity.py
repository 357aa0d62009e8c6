"""Who is acting: the person, what proves it, and the SSH client address and tty as context.

A client names itself by the uid it runs as (never `$USER`, `$LOGNAME` or `$SUDO_USER`, which
anyone can set); the engine replaces that with what it can prove — the kernel's word on a
local socket (SO_PEERCRED's uid, and the audit login uid that names the person behind a
shared account) or the database's (the session's role) — and says which in `proof`. An
actor with no `proof` is as declared: it may pause or roll back, never sign off.
"""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    user: str
    host: str = ""
    ssh_client: str = ""
    tty: str = ""
    automatic: bool = False
    proof: str = ""  # how `user` is known: "kernel: uid 0 (root), login uid 1001 (carol)", "database role carol"; "": declared

    def label(self) -> str:
        if self.automatic:
            return "warroom (automatic)"
        text = self.user
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
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Actor:
        return cls(str(data.get("user") or ""), str(data.get("host") or ""), str(data.get("ssh_client") or ""),
                   str(data.get("tty") or ""), bool(data.get("automatic")), str(data.get("proof") or ""))

    def declared(self) -> Actor:
        """As a client's word: whatever proof it claims is not one (only the engine proves)."""
        return Actor(self.user, self.host, self.ssh_client, self.tty)


AUTOMATIC = Actor(user="warroom", automatic=True)


def account_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"


def current_actor() -> Actor:
    user = account_name(os.getuid())  # the kernel's uid, not getpass (which reads LOGNAME and USER first)
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


def from_database(declared: Actor, role: str) -> Actor:
    """The sender of a command the database recorded under the session's role."""
    return Actor(role, declared.host, declared.ssh_client, declared.tty, proof=f"database role {role}")
