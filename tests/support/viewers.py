"""Many people looking at one status page at once, as browsers do: each viewer loads the page
(`GET /`), then follows its live stream (`GET /events`) until the first event arrives. Plain
Python (no pytest), so bench/page_viewers.py measures what the tests check."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Looked:
    seconds: list[float] = field(default_factory=list)  # each page load, request to last byte
    statuses: list[int] = field(default_factory=list)  # each page load's HTTP status
    pages: list[str] = field(default_factory=list)  # each page load's body
    events: int = 0  # viewers whose live stream delivered a page event


async def _viewer(client: httpx.AsyncClient, url: str, loads: int, looked: Looked, follow: bool) -> None:
    for _ in range(loads):
        started = time.perf_counter()
        answer = await client.get(url + "/")
        looked.seconds.append(time.perf_counter() - started)
        looked.statuses.append(answer.status_code)
        looked.pages.append(answer.text)
    if not follow:
        return
    async with client.stream("GET", url + "/events") as stream:
        async for line in stream.aiter_lines():
            if line == "event: page":
                looked.events += 1
                return


async def _look(url: str, viewers: int, loads: int, follow: bool, cookies: dict[str, str] | None) -> Looked:
    looked = Looked()
    limits = httpx.Limits(max_connections=2 * viewers, max_keepalive_connections=viewers)
    async with httpx.AsyncClient(limits=limits, timeout=60, cookies=cookies) as client:
        await asyncio.gather(*(_viewer(client, url, loads, looked, follow) for _ in range(viewers)))
    return looked


def look(url: str, viewers: int, *, loads: int = 1, follow: bool = True, cookies: dict[str, str] | None = None) -> Looked:
    """`viewers` at once on the page at `url`, each loading it `loads` times then (with `follow`) waiting
    for its live stream's first event."""
    return asyncio.run(_look(url, viewers, loads, follow, cookies))
