"""The JSON-over-HTTP plumbing shared by the `http` and `unleash` providers.

Every failure becomes a short FlagError reason a human on call can act on
(`HTTP 503`, `timeout after 5s`, `HTTP 401: check the token`). The token is
resolved lazily, on first use, so a plan loads (and `warroom check` can say what is
wrong) even before the secret is set; it is registered for redaction on resolve, and
no reason ever includes a request header.
"""

from __future__ import annotations

from typing import Any

import httpx

from .. import secrets
from ..plan import TLSOptions
from .base import FlagError

# What a server says about an error is useful ("no feature named X"), but only a line of it.
_DETAIL_CHARS = 160


def _detail(response: httpx.Response) -> str:
    """The server's own short explanation of an error, when it gives one in JSON."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str):
                return " ".join(body[key].split())[:_DETAIL_CHARS]
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

    def _make_client(self) -> httpx.AsyncClient:
        headers = {"Accept": "application/json", **self.headers}
        if self.token_ref:
            try:
                token = secrets.resolve(self.token_ref)
            except secrets.SecretError as exc:
                raise FlagError(str(exc)) from None
            headers[self.auth_header] = f"{self.auth_scheme} {token}" if self.auth_scheme else token
        verify: bool | str = self.tls.ca_bundle or True
        if self.tls.insecure_skip_verify:
            verify = False
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=self.timeout, verify=verify)

    async def request(self, method: str, path: str, body: Any = None, *, missing_ok: bool = False) -> Any:
        """The decoded JSON answer (None for an empty body, or a 404 when `missing_ok`)."""
        if self._client is None:
            self._client = self._make_client()
        try:
            response = await self._client.request(method, path, json=body)
        except httpx.TimeoutException:
            raise FlagError(f"timeout after {self.timeout:g}s") from None
        except httpx.HTTPError as exc:
            # The exception text can carry the full URL; the type and host are enough to act on.
            raise FlagError(f"cannot reach {httpx.URL(self.base_url).host}: {type(exc).__name__}") from None
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code in (401, 403):
            raise FlagError(f"HTTP {response.status_code}: check the token ({self.token_ref or 'no token configured'})")
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
