"""Waiting for a condition, never for a time: the one way tests wait.

A test on a busy two-core machine cannot assume that anything happens within a given
wall-clock offset. It waits until what it expects is true, with a generous deadline that
only bounds a failure, and says what never happened. Waiting for something *not* to
happen is different: `holds` watches for as long as the engine's own constants say it
would take (a poll, a heartbeat, a lease TTL), never a guess.

Plain Python (no pytest): bench/ starts its servers with the same helpers. A wait that
runs out raises NeverHappened, an AssertionError, so pytest reports it as a failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Long enough for a loaded CI machine; a passing test never waits this long.
DEADLINE = 60.0


class NeverHappened(AssertionError):
    """What a test waited for did not happen before the deadline."""


def _never(what: str, timeout: float, last: BaseException | None, show: Callable[[], object] | None) -> NeverHappened:
    text = f"never within {timeout:g}s: {what}" + (f" (last: {last!r})" if last else "")
    return NeverHappened(text + (f"\n{show()}" if show else ""))


def until(what: str, check: Callable[[], T], timeout: float = DEADLINE, every: float = 0.05,
          retry_on: tuple[type[BaseException], ...] = (), show: Callable[[], object] | None = None) -> T:
    """Call `check` until it returns something true, and return that; fail saying `what` never
    happened, and what `show` gives (the screen, the journal). Exceptions listed in `retry_on`
    (a server not up yet: OSError) count as not yet."""
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
            raise _never(what, timeout, last, show)
        time.sleep(every)


async def until_async(what: str, check: Callable[[], Any | Awaitable[Any]], timeout: float = DEADLINE,
                      every: float = 0.01, pause: Callable[[float], Awaitable[Any]] | None = None,
                      show: Callable[[], object] | None = None) -> Any:
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
            raise _never(what, timeout, None, show)
        await sleep(every)


def holds(what: str, check: Callable[[], object], seconds: float, every: float = 0.05) -> None:
    """For something that must *not* happen: `check` stays true for `seconds`, a length the
    caller derives from the engine's constants (so many polls, heartbeats, a lease TTL)."""
    deadline = time.monotonic() + seconds
    while True:
        if not check():
            raise AssertionError(f"no longer true: {what}")
        if time.monotonic() > deadline:
            return
        time.sleep(every)
