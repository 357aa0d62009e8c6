"""`page:` — the read-only status page for people off the bastion (`warroom page PLAN`).

    page:
      listen: 127.0.0.1:8080                 # loopback unless said otherwise
      key: keyring:warroom/page-links        # signs shareable links (`warroom page PLAN --link --for 24h`)
      base_url: https://status.example.com   # what the printed links start with (default: http(s)://listen)
      tls: {cert: /etc/warroom/page.pem, key: /etc/warroom/page-key.pem}
      state:                                 # the store as the page reads it: a role that may only SELECT
        url: postgresql://warroom_page@db.internal:5432/warroom
        password: env:WARROOM_PAGE_DB_PASSWORD

Every part is optional; with none the page listens on 127.0.0.1:8080, reads the plan's own
state read-only, and needs no link (loopback only).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from warroom.plan.fields import SecretRef, Strict
from warroom.plan.state import PostgresState

DEFAULT_LISTEN = "127.0.0.1:8080"


def split_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:8080` for IPv6) → (host, port); ValueError saying how to write it."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT such as {DEFAULT_LISTEN}, not {text!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(text: str) -> str:
    split_listen(text)
    return text


class ServerTLS(Strict):
    """The page's own certificate and key (PEM files): it serves HTTPS with them."""

    cert: str
    key: str


class Page(Strict):
    listen: Annotated[str, AfterValidator(_listen)] = DEFAULT_LISTEN
    key: SecretRef | None = None
    base_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")] | None = None
    tls: ServerTLS | None = None
    state: PostgresState | None = None

    @model_validator(mode="after")
    def _open_only_on_loopback(self) -> Page:
        if self.key is None and not is_loopback(split_listen(self.listen)[0]):
            raise ValueError(f"page.listen {self.listen} is not loopback: give page.key (a secret reference) so every viewer "
                             "needs a signed link, or listen on 127.0.0.1")
        return self
