"""Outbound HTTP of warroom's own actions (flag APIs, notifications, runbook steps), on httpx.

- **A deadline on the whole request.** httpx's timeout bounds each read; a server that
  trickles its answer would hold a rollback's flag write or a webhook for minutes.
- **Redirects are never followed.** A redirect would take the request's token, API key
  or cookie (or the secret URL's message) to another address; a 3xx is an error naming
  where it points, so the plan's url can be set to it.
- **Retry-After** is read (seconds or an HTTP date), for callers that honour it.

Imported only when a request is due: httpx costs start-up time every console pays.
"""

from __future__ import annotations

import asyncio
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from warroom.core import secrets


def client(timeout: float, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, **kwargs)


async def request(client: httpx.AsyncClient, method: str, url: str, *, timeout: float, **kwargs: Any) -> httpx.Response:
    """One request, bounded as a whole by `timeout`; a late answer raises httpx.TimeoutException."""
    try:
        async with asyncio.timeout(timeout):
            return await client.request(method, url, **kwargs)
    except TimeoutError:
        raise httpx.TimeoutException(f"no complete answer within {timeout:g}s") from None


def redirect_reason(response: httpx.Response) -> str | None:
    """Why a redirect answer is a failure, naming where it points (host only, redacted); None for others."""
    if not response.is_redirect:
        return None
    try:
        target = response.url.join(response.headers.get("location", ""))
        where = f"{target.scheme}://{target.host}" + (f":{target.port}" if target.port else "")
    except (httpx.InvalidURL, ValueError):
        where = "an unreadable location"
    return secrets.redact(f"HTTP {response.status_code}: redirects to {where}, not followed "
                          "(credentials never go to another address); set the url to the address it points at")


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks to wait before the next request (`Retry-After`), if it says."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
