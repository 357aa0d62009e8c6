"""Guardrails held over their `for` window, with an explicit no-data policy.

A breach counts only once it has held for the whole window, so one bad sample never
rolls a launch back; and no data is never mistaken for good data.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..plan import Guardrail
from .snapshot import GuardrailView


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
