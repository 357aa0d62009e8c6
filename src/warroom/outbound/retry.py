"""Retrying with capped exponential backoff, on tenacity, sleeping on a given clock.

One schedule (`Backoff`) and one loop (`attempt_until`) for everything warroom retries:
notifications, and the engine's flag writes when it adopts this module. The Prometheus
source does not loop (it answers from memory while it waits), but asks the same
`Backoff` when it may ask the server again.

Sleeping goes through the clock it is given, so a retry loop in the engine keeps
virtual time (tests, drills) instant and deterministic. A server's `Retry-After`
(an exception's `retry_after` attribute, in seconds) is honoured up to a bound: asking
sooner only earns another refusal, waiting longer than the bound would stall a rollback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, stop_never
from tenacity.wait import wait_base

from warroom.core.clock import Clock

T = TypeVar("T")

# The longest wait a server's Retry-After gets: longer would stall a rollback.
RETRY_AFTER_CAP = 30.0


@dataclass(frozen=True)
class Backoff:
    """initial, 2×, 4× … up to `cap` seconds; a server's Retry-After up to `retry_after_cap`."""

    initial: float = 0.2
    cap: float = 5.0
    retry_after_cap: float = RETRY_AFTER_CAP

    def delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failure in a row (1-based)."""
        # The exponent is bounded: a rollback retries for as long as it takes, and 2**1024
        # (about 85 minutes of failures at the cap) no longer fits in a float.
        return min(self.cap, self.initial * 2 ** min(max(0, failures - 1), 64))

    def after(self, failures: int, error: BaseException | None = None) -> float:
        """The wait after a failure, lengthened to what the server asked for (bounded)."""
        wait = self.delay(failures)
        asked = retry_after(error)
        return max(wait, min(asked, self.retry_after_cap)) if asked is not None else wait


def retry_after(error: BaseException | None) -> float | None:
    """The seconds a server asked to wait (HTTP 429/503 `Retry-After`), when the error carries them."""
    value = getattr(error, "retry_after", None)
    return float(value) if isinstance(value, (int, float)) and value >= 0 else None


@dataclass(frozen=True)
class Failure:
    """A failed attempt, as told to `on_failure`: what to journal or say."""

    attempt: int  # 1-based
    error: BaseException
    delay: float | None  # seconds until the next attempt; None: no further attempt


class Abandoned(Exception):
    """`abandon()` said to stop retrying (a rollback took over from a step up)."""


class _Wait(wait_base):
    def __init__(self, backoff: Backoff):
        self.backoff = backoff

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return self.backoff.after(state.attempt_number, error)


async def attempt_until(
    fn: Callable[[int], Awaitable[T]],
    *,
    clock: Clock,
    backoff: Backoff,
    attempts: int | None = None,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    abandon: Callable[[], bool] | None = None,
    on_failure: Callable[[Failure], Any] | None = None,
) -> T:
    """`await fn(attempt)` (attempt counts from 1) until it returns, sleeping on `clock` between tries.

    `attempts` None retries without end (a rollback). Every failed attempt is told to
    `on_failure` before the wait, the last one too (with `delay` None). After the last
    attempt its error is raised; `Abandoned` when `abandon()` is true before a retry.
    Errors that are not `retry_on` are raised at once (cancellation always is).
    """

    def told(state: RetryCallState) -> None:
        if on_failure is not None and state.outcome is not None and (error := state.outcome.exception()) is not None:
            on_failure(Failure(state.attempt_number, error, state.upcoming_sleep))

    def gave_up(state: RetryCallState) -> None:
        assert state.outcome is not None
        error = state.outcome.exception()
        assert error is not None  # it gives up after a failed attempt
        if on_failure is not None:
            on_failure(Failure(state.attempt_number, error, None))
        raise error

    def before(state: RetryCallState) -> None:
        if state.attempt_number > 1 and abandon is not None and abandon():
            raise Abandoned()

    retrying = AsyncRetrying(
        sleep=clock.sleep,
        stop=stop_after_attempt(attempts) if attempts is not None else stop_never,
        wait=_Wait(backoff),
        retry=retry_if_exception_type(retry_on),
        before=before,
        before_sleep=told,
        retry_error_callback=gave_up,
    )
    async for attempt in retrying:
        with attempt:
            return await fn(attempt.retry_state.attempt_number)
    raise AssertionError("unreachable: tenacity either returns, raises or retries")  # pragma: no cover
