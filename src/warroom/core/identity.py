"""Who is acting: OS user, SSH client address and tty, recorded with every command."""

from __future__ import annotations

import getpass
import os
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
        return {"user": self.user, "host": self.host, "ssh_client": self.ssh_client, "tty": self.tty, "automatic": self.automatic}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Actor:
        return cls(str(data.get("user") or ""), str(data.get("host") or ""), str(data.get("ssh_client") or ""),
                   str(data.get("tty") or ""), bool(data.get("automatic")))


AUTOMATIC = Actor(user="warroom", automatic=True)


def current_actor() -> Actor:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    # SSH_CONNECTION is "client_ip client_port server_ip server_port".
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
