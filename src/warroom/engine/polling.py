"""Asking the sources and reading the flags: queries in flight, readings, history, health.

Panes, guardrails and gates all resolve to queries (source, query, series label); each
distinct query is asked once a tick, concurrently. A slow query keeps running into the
next tick (its pane shows stale meanwhile) instead of holding the tick back. Flags are
read once a tick too, all at once, within the same budget: a hanging flag service leaves
the flags as last read (and says when that was) while guardrails go on being judged.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from warroom.core.clock import Clock
from warroom.core.flagstate import FlagState
from warroom.core.secrets import redact
from warroom.engine.cohorts import QueryKey
from warroom.flags.base import FlagError, FlagProvider
from warroom.plan.model import Plan
from warroom.sources.base import Reading, Source, SourceContext

HISTORY = 240  # samples kept per pane for sparklines


async def within(tasks: Iterable[asyncio.Future[Any]], budget: float | None) -> None:
    """Await `tasks` at most `budget` seconds (None: until done); those still running stay in flight, never cancelled."""
    pending = [t for t in tasks if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=budget)


@dataclass(frozen=True)
class HealthChange:
    """A source stopped answering (`detail` says how) or answers again (`detail` empty)."""

    source: str
    detail: str

    @property
    def down(self) -> bool:
        return bool(self.detail)


class Poller:
    def __init__(self, plan: Plan, sources: dict[str, Source], clock: Clock):
        self.plan = plan
        self.sources = sources
        self.clock = clock
        self.pane_keys: dict[str, QueryKey] = {p.id: (p.source or plan.default_source(), p.query, p.series_label) for p in plan.panes}
        self.keys: list[QueryKey] = list(dict.fromkeys(self.pane_keys.values()))
        self.readings: dict[QueryKey, Reading] = {}
        self.last_good: dict[QueryKey, float] = {}
        self.history: dict[str, collections.deque[float | None]] = {p.id: collections.deque(maxlen=HISTORY) for p in plan.panes}
        self.inflight: dict[QueryKey, asyncio.Task[Reading]] = {}
        self.asked_at: dict[QueryKey, float] = {}  # when each in-flight query was asked
        self.source_down: dict[str, str] = {}

    def want(self, *keys: QueryKey) -> None:
        """Queries a guardrail, gate or the exposure check needs: asked every tick from now on, once each."""
        for key in keys:
            if key not in self.keys:
                self.keys.append(key)

    async def query(self, key: QueryKey, ctx: SourceContext) -> Reading:
        source, query, label = key
        try:
            return await self.sources[source].query(query, ctx, label)
        except Exception as exc:  # a source must not raise; if one does, it is a source error, not a crash
            return Reading.error(redact(f"{type(exc).__name__}: {exc}"))

    async def poll(self, now: float, ctx: SourceContext) -> None:
        for key in self.keys:
            if key not in self.inflight:
                self.inflight[key] = asyncio.ensure_future(self.query(key, ctx))
                self.asked_at[key] = now
        # A slow query keeps running into the next tick; its pane shows stale meanwhile.
        await within(self.inflight.values(), self.budget())
        for key, task in list(self.inflight.items()):
            if task.done():
                del self.inflight[key]
                self.readings[key] = task.result()
                if self.readings[key].has_value:
                    self.last_good[key] = now

    def budget(self) -> float:
        """Wall seconds a tick waits for what it asked (queries, the flags' read): most of a poll, so the
        tick keeps its cadence; virtual time waits for the answers (its clock does not move meanwhile)."""
        return 10.0 if self.clock.speed == float("inf") else max(0.2, 0.8 * self.plan.poll_interval / self.clock.speed)

    def record_history(self) -> dict[str, float | None]:
        """Each pane's value this tick, added to its sparkline; what the journal's samples store."""
        samples: dict[str, float | None] = {}
        for pane in self.plan.panes:
            reading = self.readings.get(self.pane_keys[pane.id])
            value = reading.value if reading is not None and reading.has_value else None
            self.history[pane.id].append(value)
            samples[pane.id] = value
        return samples

    def health_changes(self) -> list[HealthChange]:
        """Sources that went down or came back since the last call."""
        down: dict[str, str] = {}
        for (source, _, _), reading in self.readings.items():
            if reading.status == "error" and source not in down:
                down[source] = reading.detail
        changes = [HealthChange(s, d) for s, d in down.items() if s not in self.source_down]
        changes += [HealthChange(s, "") for s in self.source_down if s not in down]
        self.source_down = down
        return changes

    def value(self, key: QueryKey) -> tuple[float | None, str]:
        """The value of a query now, or None with why."""
        reading = self.readings.get(key)
        if reading is None:
            return None, "not polled yet"
        return (reading.value, "") if reading.has_value else (None, reading.detail or reading.status)

    async def backfill(self) -> None:
        """Each pane's recent history from its source (range queries), all panes at once.

        The span is the source's `backfill` setting, at most what a sparkline holds; the
        points go before whatever live samples the ticks added meanwhile.
        """
        now = self.clock.now()
        step = self.plan.poll_interval

        async def fetch(pane_id: str) -> tuple[str, list[tuple[float, float]]]:
            source, query, _ = self.pane_keys[pane_id]
            span = min(self.sources[source].backfill_span, HISTORY * step)
            if span <= 0:
                return pane_id, []
            try:
                return pane_id, await self.sources[source].backfill(query, now - span, now, step)
            except Exception:  # history is a nicety; the live query reports any problem
                return pane_id, []

        for pane_id, points in await asyncio.gather(*(fetch(p.id) for p in self.plan.panes)):
            if points:
                live = list(self.history[pane_id])
                self.history[pane_id] = collections.deque([v for _, v in points] + live, maxlen=HISTORY)

    def cancel(self) -> None:
        for task in self.inflight.values():
            task.cancel()

    async def close(self) -> None:
        for source in self.sources.values():
            with contextlib.suppress(Exception):  # closing must not stop the others from closing
                await source.close()


class FlagReader:
    """The flags as last read back: observed state, or why a flag could not be read, and when.

    One read is in flight at a time; a tick waits for it at most its budget, a read still
    running then lands in a later tick. Meanwhile `observed` stays as last read and
    `read_at` says when that read was asked.
    """

    def __init__(self, provider: FlagProvider, names: list[str], clock: Clock):
        self.provider = provider
        self.names = names
        self.clock = clock
        self.observed: dict[str, FlagState | None] = {}
        self.errors: dict[str, str] = {}
        self.vendor_freeze: str | None = None  # why the flag service itself refuses changes now
        self.read_at: float | None = None  # engine clock time the reading shown was asked; None: never read back
        self.inflight: asyncio.Task[dict[str, FlagState | None | FlagError]] | None = None
        self._asked: tuple[float, dict[str, FlagState | None]] = (0.0, {})  # when the read in flight was asked, and what was known then

    async def _vendor_freeze(self) -> str | None:
        try:
            return await self.provider.vendor_freeze()
        except Exception:  # cannot say: the flags' own reads say what is wrong with the service
            return None

    async def _read(self) -> dict[str, FlagState | None | FlagError]:
        try:
            results, self.vendor_freeze = await asyncio.gather(self.provider.read_many(self.names), self._vendor_freeze())
        except Exception as exc:  # a provider must not raise here; if one does, every flag is unreadable
            reason = redact(f"{type(exc).__name__}: {exc}")
            return {n: FlagError(reason) for n in self.names}
        return dict(results)

    async def read(self, budget: float | None = None) -> bool:
        """Read every flag (unless a read is in flight), waiting at most `budget` wall seconds (None: until
        read back). True when a reading landed; False: the flags stay as last read, the read goes on."""
        if self.inflight is None:
            self.inflight = asyncio.ensure_future(self._read())
            self._asked = (self.clock.now(), dict(self.observed))
        await within((self.inflight,), budget)
        if not self.inflight.done():
            return False
        results, self.inflight = self.inflight.result(), None
        asked_at, known = self._asked
        for name, result in results.items():
            if self.observed.get(name) is not known.get(name):
                continue  # a write read this flag back after this read was asked: that reading is the newer
            if isinstance(result, FlagError):
                self.errors[name] = result.reason
            else:
                self.observed[name] = result
                self.errors.pop(name, None)
        self.read_at = asked_at
        return True

    def confirmed(self, name: str, state: FlagState) -> None:
        """A write read this flag back: that reading stands, and an earlier read's error no longer does."""
        self.observed[name] = state
        self.errors.pop(name, None)

    def cancel(self) -> None:
        if self.inflight is not None:
            self.inflight.cancel()

    def readable(self) -> dict[str, FlagState]:
        """The flags read back now (none missing, none in error)."""
        return {n: s for n, s in self.observed.items() if s is not None and n not in self.errors}
