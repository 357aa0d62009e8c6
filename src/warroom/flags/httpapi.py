"""The JSON-over-HTTP plumbing shared by the `http` and `unleash` providers.

Every failure becomes a short FlagError reason a human on call can act on
(`HTTP 503`, `timeout after 5s`, `HTTP 401: check the token`). The token is
resolved lazily, on first use, so a plan loads (and `warroom check` can say what is
wrong) even before the secret is set; it is registered for redaction on resolve, and
no reason ever includes a request header. Redirects are not followed (the token would
go along), and a server's Retry-After is honoured: until it has passed, a write waits
for it (bounded) and a read fails at once without asking.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import httpx

from warroom.core import secrets
from warroom.flags.base import FlagError
from warroom.outbound import http as outbound
from warroom.outbound.retry import RETRY_AFTER_CAP
from warroom.plan.fields import TLSOptions

# What a server says about an error is useful ("no feature named X"), but only a line of it.
_DETAIL_CHARS = 160
# A rate limit without a Retry-After: wait this long before asking again.
_RATE_LIMIT_WAIT = 1.0


class RateLimited(FlagError):
    """The flag API asked to wait (HTTP 429, or 503 with Retry-After): `retry_after` seconds."""

    def __init__(self, reason: str, retry_after: float):
        super().__init__(reason)
        self.retry_after = retry_after


def _detail(response: httpx.Response) -> str:
    """The server's own short explanation of an error, when it gives one in JSON."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str):
                return secrets.excerpt(" ".join(body[key].split()), _DETAIL_CHARS)
    return ""


class JsonApi:
    def __init__(
        self,
        base_url: str,
        *,
        token_ref: str | None,
        auth_header: str = "Authorization",
        auth_scheme: str = "Bearer",
        headers: dict[str, str] | None = None,
        timeout: float = 5.0,
        tls: TLSOptions = TLSOptions(),
    ):
        self.base_url = base_url.rstrip("/")
        self.token_ref = token_ref
        self.auth_header = auth_header
        self.auth_scheme = auth_scheme
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.tls = tls
        self._client: httpx.AsyncClient | None = None
        self._not_before = 0.0  # monotonic time before which the server asked not to be asked

    def _make_client(self) -> httpx.AsyncClient:
        try:
            headers = {"Accept": "application/json", **secrets.resolve_headers(self.headers)}
            if self.token_ref:
                token = secrets.resolve(self.token_ref)
                headers[self.auth_header] = f"{self.auth_scheme} {token}" if self.auth_scheme else token
        except secrets.SecretError as exc:
            raise FlagError(str(exc)) from None
        verify: bool | str = self.tls.ca_bundle or True
        if self.tls.insecure_skip_verify:
            verify = False
        return outbound.client(self.timeout, base_url=self.base_url, headers=headers, verify=verify)

    async def _rate_limit(self, method: str) -> None:
        """Honour the server's last Retry-After: a write waits it out, a read (every tick) does not wait."""
        left = self._not_before - time.monotonic()
        if left <= 0:
            return
        if method == "GET":
            raise RateLimited(f"rate limited: the flag API asked to wait, {math.ceil(left)}s left", left)
        await asyncio.sleep(left)

    def _rate_limited(self, response: httpx.Response) -> RateLimited | None:
        asked = outbound.retry_after(response)
        if response.status_code != 429 and not (response.status_code == 503 and asked is not None):
            return None
        wait = min(asked if asked is not None else _RATE_LIMIT_WAIT, RETRY_AFTER_CAP)
        self._not_before = time.monotonic() + wait
        said = f"asks to wait {asked:g}s" if asked is not None else "gave no Retry-After"
        waiting = f", waiting {wait:g}s" if asked is None or wait < asked else ""
        return RateLimited(f"HTTP {response.status_code}: rate limited, the server {said}{waiting}", wait)

    async def _send(self, method: str, path: str, body: Any, headers: dict[str, str] | None) -> httpx.Response:
        """The answer, or FlagError for what stands between us and a usable one (a transport error,
        a rate limit, a redirect, a token refused)."""
        if self._client is None:
            self._client = self._make_client()
        await self._rate_limit(method)
        try:
            response = await outbound.request(self._client, method, path, json=body, headers=headers or {}, timeout=self.timeout)
        except httpx.TimeoutException:
            raise FlagError(f"timeout after {self.timeout:g}s") from None
        except httpx.HTTPError as exc:
            # The exception text can carry the full URL; the type and host are enough to act on.
            raise FlagError(f"cannot reach {httpx.URL(self.base_url).host}: {type(exc).__name__}") from None
        limited = self._rate_limited(response)
        if limited is not None:
            raise limited
        redirect = outbound.redirect_reason(response)
        if redirect is not None:
            raise FlagError(redirect)
        if response.status_code in (401, 403):
            raise FlagError(f"HTTP {response.status_code}: check the token ({self.token_ref or 'no token configured'})")
        return response

    async def allowed(self, path: str) -> set[str]:
        """The methods an `OPTIONS` on `path` says this token may use (its `Allow` header)."""
        response = await self._send("OPTIONS", path, None, None)
        if response.status_code >= 300:
            raise FlagError(f"OPTIONS {path}: HTTP {response.status_code}")
        return {m.strip().upper() for m in response.headers.get("allow", "").split(",") if m.strip()}

    async def request(self, method: str, path: str, body: Any = None, *, missing_ok: bool = False,
                      headers: dict[str, str] | None = None) -> Any:
        """The decoded JSON answer (None for an empty body, or a 404 when `missing_ok`)."""
        response = await self._send(method, path, body, headers)
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code >= 300:
            detail = _detail(response)
            raise FlagError(f"HTTP {response.status_code}" + (f": {detail}" if detail else ""))
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "unknown").split(";")[0]
            raise FlagError(f"{method} {path}: expected JSON, got {kind}") from None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
