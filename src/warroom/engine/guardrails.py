"""Guardrails held over their `for` window, with an explicit no-data policy.

A breach counts only once it has held for the whole window, so one bad sample never
rolls a launch back; and no data is never mistaken for good data. Neither is too little
traffic: a guardrail with `evidence` gives no verdict below its minimum count, and its
`no_data` policy decides. A guardrail in `mode: shadow` is judged the same way; the
engine journals what it would have done instead of doing it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from warroom.core.guardrail_actions import GuardrailAction
from warroom.core.snapshot import GuardrailView
from warroom.core.statuses import GuardrailStatus
from warroom.core.units import format_duration, format_value
from warroom.engine.cohorts import ConditionQueries, Judgement, QueryKey, difference_text, judge, limits_text
from warroom.engine.polling import Poller
from warroom.plan.conditions import Guardrail
from warroom.plan.model import Plan
from warroom.sources.base import Reading


@dataclass
class Verdict:
    view: GuardrailView
    fire: bool  # the window was just met: act now
    started: bool  # a breach (or no-data spell) just began
    cleared: bool  # a breach just ended
    lacking: bool = False  # a spell without enough traffic to judge just began


class GuardrailTracker:
    def __init__(self, gid: str, guard: Guardrail, unit: str, queries: ConditionQueries):
        self.id = gid
        self.guard = guard
        self.unit = unit
        self.queries = queries
        self.since: float | None = None  # start of the current breach
        self.nodata_since: float | None = None
        self.fired = False
        self.lacking = False  # in a spell without enough traffic

    @classmethod
    def of(cls, plan: Plan, index: int, pane_key: Callable[[str], QueryKey]) -> GuardrailTracker:
        guard = plan.guardrails[index]
        return cls(plan.guardrail_id(index), guard, plan.condition_unit(guard), ConditionQueries.of(plan, guard, pane_key))

    @property
    def target(self) -> str:
        return self.guard.pane or self.guard.query or "new cohort"

    def evaluate(self, readings: Mapping[QueryKey, Reading], now: float, looks: int = 1, share: float = 0.5) -> Verdict:
        """This tick's verdict from the readings of every query the guardrail needs.

        `share`: the part of users the plan puts on the new code now (see cohorts.judge).
        """
        judgement = judge(self.guard, self.unit, self.queries, readings, looks, share)
        if judgement.idle:  # nothing to compare by plan: no alarm, and any breach spell ends
            cleared = self.since is not None
            self.since, self.nodata_since, self.fired, self.lacking = None, None, False, False
            return Verdict(self._view(GuardrailStatus.IGNORED, None, judgement.detail, None, 0.0, judgement), False, False, cleared)
        return self.judged(judgement, now)

    def judged(self, judgement: Judgement, now: float) -> Verdict:
        g = self.guard
        started = cleared = fire = False
        lacking = judgement.lacking and not self.lacking
        self.lacking = judgement.lacking
        value = judgement.value
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
                status = GuardrailStatus.NODATA if g.no_data == "hold" else GuardrailStatus.IGNORED
                view = self._view(status, None, judgement.detail or "no data", self.nodata_since, 0.0, judgement)
                return Verdict(view, False, False, cleared, lacking)
        else:
            self.nodata_since = None
            bad = judgement.bad
        if not bad:
            if self.since is not None:
                cleared = True
            self.since, self.fired = None, False
            return Verdict(self._view(GuardrailStatus.OK, value, judgement.detail, None, 0.0, judgement), False, False, cleared)
        if self.since is None:
            self.since = now
            started = True
        held = now - self.since
        progress = 1.0 if g.for_ <= 0 else min(1.0, held / g.for_)
        if held >= g.for_:
            status = GuardrailStatus.BREACH
            if not self.fired:
                self.fired = fire = True
        else:
            status = GuardrailStatus.PENDING
        return Verdict(self._view(status, value, judgement.detail, self.since, progress, judgement), fire, started, cleared, lacking)

    def _view(self, status: GuardrailStatus, value: float | None, detail: str, since: float | None, progress: float,
              judgement: Judgement) -> GuardrailView:
        g = self.guard
        comparison = judgement.comparison
        shown = ""
        if comparison is not None and comparison.text:
            shown = f"{comparison.text} (worse beyond {limits_text(g, self.unit)}"
            shown += f", limit {format_value(g.threshold, self.unit)})" if g.threshold is not None else ")"
        return GuardrailView(
            id=self.id,
            target=self.target,
            op=g.op,
            threshold=judgement.limit if judgement.limit is not None else g.threshold,
            for_s=g.for_,
            action=GuardrailAction(g.action),
            no_data=g.no_data,
            status=status,
            value=value,
            since=since,
            progress=progress,
            detail=detail,
            unit=self.unit,
            mode=g.mode,
            comparison=comparison,
            shown=shown,
        )


class Guardrails:
    """Every guardrail of the plan with the queries it watches, judged once a tick."""

    def __init__(self, plan: Plan, poller: Poller):
        self.trackers: list[tuple[GuardrailTracker, QueryKey]] = []
        for i in range(len(plan.guardrails)):
            tracker = GuardrailTracker.of(plan, i, poller.pane_keys.__getitem__)
            poller.want(*tracker.queries.all())
            self.trackers.append((tracker, tracker.queries.main))
        self.views: list[GuardrailView] = []

    def evaluate(self, poller: Poller, now: float, looks: int, share: Callable[[], float]) -> Iterator[tuple[GuardrailTracker, QueryKey, Verdict]]:
        """Each guardrail's verdict on this tick's readings, one at a time: the caller acts on one before
        the next is judged. `views` then holds what a screen shows.

        `looks`: how often the phase's soak judges a guardrail; `share()`: the part of users the plan
        puts on the new code now (see cohorts.judge), asked for each guardrail, since one that fired
        may have rolled back and left no cohort to compare.
        """
        views = []
        for tracker, key in self.trackers:
            verdict = tracker.evaluate(poller.readings, now, looks, share())
            views.append(verdict.view)
            yield tracker, key, verdict
        self.views = views

    def watching(self) -> dict[str, list[GuardrailView]]:
        """The acting guardrails' views by the pane they watch (a shadow guardrail never turns a pane red)."""
        out: dict[str, list[GuardrailView]] = {}
        for pane, tracker, view in self._by_pane():
            if tracker.guard.mode != "shadow":
                out.setdefault(pane, []).append(view)
        return out

    def notes(self) -> dict[str, str]:
        """What a pane's cohort or evidence guardrails add to its number (see pane_note)."""
        by_pane: dict[str, list[tuple[GuardrailTracker, GuardrailView]]] = {}
        for pane, tracker, view in self._by_pane():
            by_pane.setdefault(pane, []).append((tracker, view))
        return {pane: pane_note(watching) for pane, watching in by_pane.items()}

    def _by_pane(self) -> list[tuple[str, GuardrailTracker, GuardrailView]]:
        """(pane, tracker, view) of the guardrails that watch a pane. Not strict: no views before the first tick."""
        return [(pane, tracker, view) for view, (tracker, _) in zip(self.views, self.trackers, strict=False)
                if (pane := tracker.guard.pane)]


def why(view: GuardrailView) -> str:
    """The breach in words: `errors 3.00% above 1.00%`, the cohorts side by side, or what no data means for it."""
    if view.value is None:
        detail = f" ({view.detail})" if view.detail else ""
        return f"{view.target} has no data{detail}, a breach by its `no_data: breach`"
    if view.shown:
        return view.shown
    return f"{view.target} {format_value(view.value, view.unit)} {view.op} {format_value(view.threshold, view.unit)}"


def held(guard: Guardrail) -> str:
    return f"held {format_duration(guard.for_)}" if guard.for_ else "immediate"


def shadow_message(tracker: GuardrailTracker, view: GuardrailView) -> str:
    """What a shadow guardrail would have done, with its numbers and window (it does nothing)."""
    done = GuardrailAction(tracker.guard.action).done
    return f"shadow guardrail {tracker.id} would have {done}: {why(view)} ({held(tracker.guard)}); not acting (mode: shadow)"


def why_data(view: GuardrailView, key: QueryKey) -> dict[str, Any]:
    """The numbers behind a breach, journaled with what it caused (and sent, and reported)."""
    data: dict[str, Any] = {
        "guardrail": view.id,
        "query": key[1],
        "source": key[0],
        "value": view.value,
        "op": view.op,
        "threshold": view.threshold,
        "for": view.for_s,
        "since": view.since,
        "action": view.action,
        "unit": view.unit,
    }
    if view.comparison is not None:
        c = view.comparison
        data["comparison"] = {"new": c.new, "control": c.control, "difference": c.difference, "ratio": c.ratio,
                              "n_new": c.n_new, "n_control": c.n_control, "p_value": c.p_value, "level": c.level,
                              "text": view.shown or c.text}
    if view.mode == "shadow":
        data["shadow"] = True
    return data


def pane_note(watching: list[tuple[GuardrailTracker, GuardrailView]]) -> str:
    """What a pane's cohort or evidence guardrails add to its number while they are not ok: both cohorts
    side by side while breaching, or why there is no verdict (not enough traffic). Healthy: nothing."""
    for tracker, view in sorted(watching, key=lambda tv: tv[0].guard.mode == "shadow"):
        g = tracker.guard
        if (g.compare is None and g.evidence is None) or view.status in (GuardrailStatus.OK, GuardrailStatus.IGNORED):
            continue
        text = view.detail if view.value is None else _pane_comparison(view, tracker.unit)
        if text:
            return ("shadow: " if g.mode == "shadow" else "") + text
    return ""


def describe(plan: Plan, g: Guardrail) -> str:
    """A guardrail in words and in its own unit (what `warroom check` prints), so a limit off by a unit shows."""
    unit = plan.condition_unit(g)
    held = f" for {format_duration(g.for_)}" if g.for_ else ""
    if g.compare is not None:
        worse = "higher" if g.compare.worse == "above" else "lower"
        text = f"{g.action} when the new cohort is {worse} than the control by {limits_text(g, unit)}"
        if g.threshold is not None:
            text += f", or {g.op} {format_value(g.threshold, unit)} whatever the control"
        text += f" ({g.pane or 'its own queries'}, {unit}){held}"
    else:
        text = f"{g.action} when {g.pane or g.query} is {g.op} {format_value(g.threshold, unit)}{held}"
    if g.evidence is not None:
        each = " per cohort" if g.compare is not None else ""
        text += f"; judged on at least {g.evidence.min:g} requests in the window{each}"
        if g.evidence.test:
            text += (f", and only on a real difference: one-sided {g.evidence.test} z-test, false alarm "
                     f"{g.evidence.false_alarm:.2%} over a phase's soak (Bonferroni over its looks)")
    text += f"; no data: {g.no_data}"
    return text + ("; mode: shadow (journals what it would do, never acts)" if g.mode == "shadow" else "")


def _pane_comparison(view: GuardrailView, unit: str) -> str:
    """`Δ+9.96pp new 10.00% vs control 0.039%`: the difference first, so a narrow pane keeps the point."""
    c = view.comparison
    if c is None or c.new is None:
        return ""
    if c.control is None or c.difference is None:
        return f"new {format_value(c.new, unit)}"
    return f"Δ{difference_text(c.difference, unit)} new {format_value(c.new, unit)} vs control {format_value(c.control, unit)}"
