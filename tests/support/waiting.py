"""Waiting for a condition, never for a time: the one way tests wait.

A test on a busy two-core machine cannot assume that anything happens within a given
wall-clock offset. It waits until what it expects is true, with a generous deadline that
only bounds a failure, and says what never happened. Waiting for something *not* to
happen is different: derive how long from the engine's own constants (a poll, a lease
TTL), never from a guess.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

# Long enough for a loaded CI machine; a passing test never waits this long.
DEADLINE = 60.0


def until(what: str, check: Callable[[], T], timeout: float = DEADLINE, every: float = 0.05,
          retry_on: tuple[type[BaseException], ...] = ()) -> T:
    """Call `check` until it returns something true, and return that; fail saying `what` never
    happened. Exceptions listed in `retry_on` (a server not up yet: OSError) count as not yet."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except retry_on as exc:
            last = exc
        if time.monotonic() > deadline:
            pytest.fail(f"never within {timeout:g}s: {what}" + (f" (last: {last!r})" if last else ""))
        time.sleep(every)


async def until_async(what: str, check: Callable[[], Any | Awaitable[Any]], timeout: float = DEADLINE,
                      every: float = 0.01, pause: Callable[[float], Awaitable[Any]] | None = None) -> Any:
    """`until` for asyncio tests: `check` may be a coroutine function; `pause` is how to let time
    pass between tries (a Textual pilot's `pause`, say; default asyncio.sleep)."""
    deadline = time.monotonic() + timeout
    sleep = pause or asyncio.sleep
    while True:
        value = check()
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"never within {timeout:g}s: {what}")
        await sleep(every)
