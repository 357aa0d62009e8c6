"""retry.py: tenacity on the engine's clock — virtual time stays instant and exact."""

from __future__ import annotations

import asyncio

import pytest

from warroom.core.clock import VirtualClock
from warroom.outbound.retry import Abandoned, Backoff, Failure, attempt_until


class Refused(Exception):
    def __init__(self, retry_after: float | None = None):
        super().__init__("refused")
        self.retry_after = retry_after


def test_the_schedule_doubles_up_to_its_cap_and_honours_retry_after_up_to_its_bound():
    backoff = Backoff(initial=0.5, cap=4.0, retry_after_cap=10.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.after(1, Refused(3.0)) == 3.0  # the server asked for longer
    assert backoff.after(4, Refused(1.0)) == 4.0  # ours is longer already
    assert backoff.after(1, Refused(3600.0)) == 10.0  # bounded: a rollback must not stall an hour
    assert backoff.after(1, ValueError()) == 0.5


def test_a_rollback_that_fails_for_hours_keeps_its_capped_wait():
    # 1,025 failures at a 5 s cap is about 85 minutes of a refusing flag API: 2**1024 overflowed a float.
    assert Backoff().delay(1025) == Backoff().delay(10**6) == 5.0


async def test_failures_are_told_with_their_wait_and_sleeping_goes_through_the_clock():
    clock = VirtualClock(start=1000.0)
    told: list[Failure] = []
    calls: list[tuple[int, float]] = []

    async def flaky(attempt: int) -> str:
        calls.append((attempt, clock.now()))
        if attempt < 4:
            raise Refused(retry_after=2.0 if attempt == 2 else None)
        return "landed"

    result = await asyncio.wait_for(attempt_until(flaky, clock=clock, backoff=Backoff(), on_failure=told.append), 5)
    assert result == "landed"
    assert [(f.attempt, f.delay) for f in told] == [(1, 0.2), (2, 2.0), (3, 0.8)]
    # Virtual time moved by exactly the waits: no real sleeping, the same on every run.
    assert [t for _, t in calls] == pytest.approx([1000.0, 1000.2, 1002.2, 1003.0])


async def test_a_bounded_loop_raises_the_last_error_after_telling_it():
    told: list[Failure] = []

    async def down(attempt: int) -> None:
        raise Refused()

    with pytest.raises(Refused):
        await attempt_until(down, clock=VirtualClock(), backoff=Backoff(), attempts=3, on_failure=told.append)
    assert [(f.attempt, f.delay) for f in told] == [(1, 0.2), (2, 0.4), (3, None)]


async def test_abandon_is_asked_before_each_retry_and_other_errors_are_not_retried():
    attempts: list[int] = []
    stop = {"now": False}

    async def write(attempt: int) -> None:
        attempts.append(attempt)
        stop["now"] = attempt == 2  # a rollback took over during the second attempt
        raise Refused()

    with pytest.raises(Abandoned):
        await attempt_until(write, clock=VirtualClock(), backoff=Backoff(), abandon=lambda: stop["now"])
    assert attempts == [1, 2]

    async def broken(attempt: int) -> None:
        attempts.append(attempt)
        raise KeyError("a bug, not an outage")

    attempts.clear()
    with pytest.raises(KeyError):
        await attempt_until(broken, clock=VirtualClock(), backoff=Backoff(), retry_on=Refused)
    assert attempts == [1]
