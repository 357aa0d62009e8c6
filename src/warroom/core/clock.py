"""Clocks the engine is driven by: real time, scaled fast time, or virtual time.

The engine never calls time.time() itself, so tests and drills can run a launch in
seconds and get exactly the decisions real time would have given.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    speed: float

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    speed = 1.0

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Time runs `speed` times faster than the wall clock (a 1 h soak in 1 min at 60×)."""

    def __init__(self, speed: float, start: float | None = None):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._t0 = time.time() if start is None else start
        self._m0 = time.monotonic()

    def now(self) -> float:
        return self._t0 + (time.monotonic() - self._m0) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class VirtualClock:
    """Time moves only when someone sleeps or calls advance(): instant and deterministic."""

    speed = float("inf")

    def __init__(self, start: float = 1_800_000_000.0):
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)


def make_clock(speed: str | float | None) -> Clock:
    """`--speed`: 1 (default) real time, N for N× fast time, `max` for virtual time."""
    if speed in (None, "", 1, 1.0, "1"):
        return RealClock()
    if speed == "max":
        return VirtualClock(time.time())
    return ScaledClock(float(speed))
