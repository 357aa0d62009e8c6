"""Guardrails held over their `for` window, with an explicit no-data policy.

A breach counts only once it has held for the whole window, so one bad sample never
rolls a launch back; and no data is never mistaken for good data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..plan import Guardrail, Plan
from ..units import format_duration, format_value
from ..snapshot import GuardrailView
from ..sources.base import Reading
from .polling import Poller, QueryKey


@dataclass
class Verdict:
    view: GuardrailView
    fire: bool  # the window was just met: act now
    started: bool  # a breach (or no-data spell) just began
    cleared: bool  # a breach just ended


class GuardrailTracker:
    def __init__(self, gid: str, guard: Guardrail, unit: str = "count"):
        self.id = gid
        self.guard = guard
        self.unit = unit
        self.since: float | None = None  # start of the current breach
        self.nodata_since: float | None = None
        self.fired = False

    @property
    def target(self) -> str:
        return self.guard.pane or self.guard.query or ""

    def update(self, value: float | None, detail: str, now: float) -> Verdict:
        g = self.guard
        started = cleared = fire = False
        if value is None:
            if self.nodata_since is None:
                self.nodata_since = now
            if g.no_data == "breach":
                bad = True
            else:
                # hold/ignore: an unknown value neither proves nor disproves a breach,
                # so the window restarts when data returns.
                if self.since is not None:
                    cleared = True
                self.since, self.fired = None, False
                status = "nodata" if g.no_data == "hold" else "ignored"
                return Verdict(self._view(status, None, detail or "no data", self.nodata_since, 0.0), False, False, cleared)
        else:
            self.nodata_since = None
            bad = g.is_bad(value)
        if not bad:
            if self.since is not None:
                cleared = True
            self.since, self.fired = None, False
            return Verdict(self._view("ok", value, detail, None, 0.0), False, False, cleared)
        if self.since is None:
            self.since = now
            started = True
        held = now - self.since
        progress = 1.0 if g.for_ <= 0 else min(1.0, held / g.for_)
        if held >= g.for_:
            status = "breach"
            if not self.fired:
                self.fired = fire = True
        else:
            status = "pending"
        return Verdict(self._view(status, value, detail, self.since, progress), fire, started, cleared)

    def _view(self, status: str, value: float | None, detail: str, since: float | None, progress: float) -> GuardrailView:
        g = self.guard
        return GuardrailView(
            id=self.id,
            target=self.target,
            op=g.op,
            threshold=g.threshold,
            for_s=g.for_,
            action=g.action,
            no_data=g.no_data,
            status=status,
            value=value,
            since=since,
            progress=progress,
            detail=detail,
            unit=self.unit,
        )


class Guardrails:
    """Every guardrail of the plan with the query it watches, judged once a tick."""

    def __init__(self, plan: Plan, poller: Poller):
        self.trackers: list[tuple[GuardrailTracker, QueryKey]] = []
        for i, g in enumerate(plan.guardrails):
            key = poller.key_for(g.pane, g.source, g.query)
            unit = plan.pane(g.pane).unit if g.pane else "count"
            self.trackers.append((GuardrailTracker(plan.guardrail_id(i), g, unit), key))
        self.views: list[GuardrailView] = []

    def evaluate(self, poller: Poller, now: float) -> list[tuple[GuardrailTracker, QueryKey, Verdict]]:
        """Each guardrail's verdict on this tick's readings; `views` holds what a screen shows."""
        verdicts = []
        for tracker, key in self.trackers:
            reading = poller.readings.get(key, Reading.nodata("not polled yet"))
            verdicts.append((tracker, key, tracker.update(reading.value if reading.has_value else None, reading.detail, now)))
        self.views = [v.view for _, _, v in verdicts]
        return verdicts

    def watching(self) -> dict[str, list[GuardrailView]]:
        """The guardrails' views by the pane they watch."""
        out: dict[str, list[GuardrailView]] = {}
        for view, (tracker, _) in zip(self.views, self.trackers):
            if tracker.guard.pane:
                out.setdefault(tracker.guard.pane, []).append(view)
        return out


def why(view: GuardrailView) -> str:
    """The breach in words: `errors 3.00% above 1.00%`, or what no data means for it."""
    if view.value is None:
        detail = f" ({view.detail})" if view.detail else ""
        return f"{view.target} has no data{detail}, a breach by its `no_data: breach`"
    return f"{view.target} {format_value(view.value, view.unit)} {view.op} {format_value(view.threshold, view.unit)}"


def why_data(view: GuardrailView, key: QueryKey) -> dict[str, Any]:
    """The numbers behind a breach, journaled with what it caused."""
    return {
        "guardrail": view.id,
        "query": key[1],
        "source": key[0],
        "value": view.value,
        "op": view.op,
        "threshold": view.threshold,
        "for": view.for_s,
        "since": view.since,
        "action": view.action,
    }


def held(guard: Guardrail) -> str:
    return f"held {format_duration(guard.for_)}" if guard.for_ else "immediate"
