"""Who may look: shareable links with an expiring signed token.

A token is `EXPIRY.SIGNATURE`: HMAC-SHA256, under the page's key (a secret reference:
keyring or environment), over the rollout's name and the expiry (Unix seconds). It opens
only this rollout's page, and only until it expires: every request is judged again, so a
link (or the cookie a first visit leaves) replayed after its expiry is refused like a
forged one. Nothing about the key is in a token but its signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from enum import Enum

from warroom.core.units import format_duration

COOKIE = "warroom_page"


class Verdict(Enum):
    OK = "ok"
    MISSING = "no link: ask whoever runs the launch for one"
    EXPIRED = "this link has expired: ask whoever runs the launch for a new one"
    FORGED = "this link is not valid for this page"


def _signature(key: str, rollout: str, expiry: int) -> str:
    mac = hmac.new(key.encode(), f"warroom-page\n{rollout}\n{expiry}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def sign(key: str, rollout: str, expiry: int) -> str:
    return f"{expiry}.{_signature(key, rollout, expiry)}"


def judge(token: str | None, key: str, rollout: str, now: float) -> Verdict:
    if not token:
        return Verdict.MISSING
    expiry_text, _, signature = token.partition(".")
    if not expiry_text.isdigit() or len(expiry_text) > 12:
        return Verdict.FORGED
    expiry = int(expiry_text)
    if not hmac.compare_digest(signature.encode(), _signature(key, rollout, expiry).encode()):
        return Verdict.FORGED
    return Verdict.OK if now < expiry else Verdict.EXPIRED


def link(base_url: str, key: str, rollout: str, now: float, valid_for: float) -> tuple[str, str]:
    """(the shareable URL, when it expires in words)."""
    expiry = int(now + valid_for)
    return f"{base_url.rstrip('/')}/?t={sign(key, rollout, expiry)}", f"valid for {format_duration(valid_for)}"
