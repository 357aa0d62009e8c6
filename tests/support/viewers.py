"""Many people looking at one status page at once, as browsers do: each viewer keeps a connection,
loads the page (`GET /`) on it, then follows the live stream (`GET /events`) on a second one until
the first event arrives. Plain asyncio streams speaking HTTP/1.1, so that what is timed is the
page's answer and not a client library's connection pool; plain Python (no pytest), so
bench/page_viewers.py measures what the tests check."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

STREAM_EVENT = b"event: page"


@dataclass
class Looked:
    seconds: list[float] = field(default_factory=list)  # each page load, request to last byte
    statuses: list[int] = field(default_factory=list)  # each page load's HTTP status
    pages: list[str] = field(default_factory=list)  # each page load's body
    events: int = 0  # viewers whose live stream delivered a page event


def _request(host: str, path: str, cookie: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\n" + (f"Cookie: {cookie}\r\n" if cookie else "")
            + "\r\n").encode()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
    return status, await reader.readexactly(length)


async def _viewer(host: str, port: int, loads: int, looked: Looked, follow: bool, cookie: str) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _ in range(loads):
            started = time.perf_counter()
            writer.write(_request(host, "/", cookie))
            status, body = await _answer(reader)
            looked.seconds.append(time.perf_counter() - started)
            looked.statuses.append(status)
            looked.pages.append(body.decode())
    finally:
        writer.close()
    if not follow:
        return
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(_request(host, "/events", cookie))
        seen = b""
        while STREAM_EVENT not in seen:
            chunk = await reader.read(65536)
            if not chunk:
                return
            seen += chunk
        looked.events += 1
    finally:
        writer.close()


async def _look(url: str, viewers: int, loads: int, follow: bool, cookie: str) -> Looked:
    where = urlsplit(url)
    looked = Looked()
    await asyncio.gather(*(_viewer(where.hostname or "127.0.0.1", where.port or 80, loads, looked, follow, cookie)
                           for _ in range(viewers)))
    return looked


def look(url: str, viewers: int, *, loads: int = 1, follow: bool = True, cookie: str = "") -> Looked:
    """`viewers` at once on the page at `url` (http, loopback), each loading it `loads` times then (with
    `follow`) waiting for its live stream's first event; `cookie` is a `name=value` a signed link left."""
    return asyncio.run(_look(url, viewers, loads, follow, cookie))
