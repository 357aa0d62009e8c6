"""A drill's faults on the client side: a flag service that fails or lags, a source that goes dark.

They wrap the real provider and sources, so they work against staging's own servers as
well as the simulator and a scratch flag file. Metric changes (an error rate, a latency)
are not here: they need the simulator, which injects them into the new cohort or both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from warroom.core.clock import Clock
from warroom.core.flagstate import FlagState
from warroom.core.snapshot import Snapshot
from warroom.drills.scenario import TimelineEvent
from warroom.flags.base import FlagError, FlagProvider
from warroom.sources.base import Reading, Source, SourceContext


@dataclass
class DrillTime:
    """Drill time as faults and scripts see it: seconds since start, and when each phase began."""

    clock: Clock
    started_at: float
    phase_starts: dict[int, float] = field(default_factory=dict)

    def now(self) -> float:
        return self.clock.now() - self.started_at

    def observe(self, snap: Snapshot) -> None:
        # Phases stepped through between two looks count as starting together, as in the simulator.
        if snap.phase is not None and snap.phase.started_at is not None:
            for index in range(1, snap.phase.index + 1):
                self.phase_starts.setdefault(index, snap.phase.started_at - self.started_at)

    def active(self, events: list[TimelineEvent]) -> list[TimelineEvent]:
        t = self.now()
        return [e for e in events if e.active(t, self.phase_starts)]


class FaultyFlagProvider(FlagProvider):
    """Wraps the real provider; fails or lags every call while a `flags:` event is active."""

    kind = "drill"

    def __init__(self, inner: FlagProvider, events: list[TimelineEvent], when: DrillTime):
        super().__init__(inner.config, inner.base_dir)
        self.inner = inner
        self.events = events
        self.when = when

    def describe(self) -> str:
        return f"{self.inner.describe()} (with drill faults)"

    async def _fault(self) -> None:
        for event in self.when.active(self.events):
            if event.flags == "down":
                raise FlagError("HTTP 503 from the flag service (drill fault)")
            await self.when.clock.sleep(event.delay)

    async def read(self, name: str) -> FlagState | None:
        await self._fault()
        return await self.inner.read(name)

    async def write(self, name: str, state: FlagState) -> None:
        await self._fault()
        await self.inner.write(name, state)

    async def close(self) -> None:
        await self.inner.close()


class DarkSource(Source):
    """Wraps a real source (staging's Prometheus); answers nothing while a `metrics: dark` event is active."""

    def __init__(self, inner: Source, events: list[TimelineEvent], when: DrillTime):
        super().__init__(inner.name, inner.config)
        self.inner = inner
        self.events = events
        self.when = when
        self.backfill_span = inner.backfill_span

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # `kind`, `insecure` and the like, as the real source says

    async def query(self, query: str, ctx: SourceContext, series_label: str | None = None) -> Reading:
        if self.when.active(self.events):
            return Reading.error("drill fault: the metrics source is dark")
        return await self.inner.query(query, ctx, series_label)

    async def backfill(self, query: str, start: float, end: float, step: float) -> list[tuple[float, float]]:
        return await self.inner.backfill(query, start, end, step)

    def static_problem(self, query: str) -> str | None:
        return self.inner.static_problem(query)

    def describe(self) -> str:
        return f"{self.inner.describe()} (with drill faults)"

    async def close(self) -> None:
        await self.inner.close()
