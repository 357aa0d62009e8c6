"""The drill score card, computed from the journal alone.

Detect is measured from the first bad sample on screen (a guardrail's breach `since`,
a source going dark, drift) to the first pause or rollback by anyone; mitigate to the
flags confirmed off by read-back. Both are judged with a tolerance of one poll interval
(a response is seen at a tick, and real-time ticks run a little late), the same way in
the console and headless. Because only the journal is read, a card can be recomputed
for any past drill, and the TUI can show the saved one (`latest_score_card(store)`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from warroom.core.journal_kinds import DECISIONS, Kind
from warroom.core.snapshot import JournalEntry
from warroom.core.units import plan_duration
from warroom.store import Store

RESPONSES: dict[str, str] = {Kind.PAUSE: Kind.PAUSE, Kind.ROLLBACK_INTENT: "rollback"}
# Journal kinds that mean something bad is visible on screen.
ALARMS = (Kind.GUARDRAIL_BREACH, Kind.SOURCE_ERROR, Kind.DRIFT_DETECTED)


@dataclass(frozen=True)
class ActionTaken:
    at: float  # seconds since the drill started
    action: str
    actor: str
    automatic: bool
    detail: str


@dataclass(frozen=True)
class ScoreCard:
    scenario: str
    title: str
    expected: str
    passed: bool
    incident_at: float | None  # first bad sample, seconds since the drill started
    incident: str
    time_to_detect: float | None  # first bad sample -> first pause or rollback
    time_to_mitigate: float | None  # first bad sample -> flags confirmed off
    rollback_latency: float | None  # rollback intent -> flags confirmed off
    failed_attempts: int  # flag writes that failed and were retried
    actions: tuple[ActionTaken, ...]
    mistakes: tuple[str, ...]
    findings: tuple[str, ...]  # why the drill did not pass (empty when it did)
    final_state: str
    duration: float
    started_at: float = 0.0
    dry_run_steps: int = 0
    tolerance: float = 0.0  # one poll interval: how late a response may be seen and still be in time
    soaks: tuple[tuple[int, float, float], ...] = ()  # (phase, the plan's soak, the drill's) where shortened
    injected: tuple[str, ...] = ()  # "+16.0s error_rate set 0.4 in the new code, phase 1 +6s"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScoreCard:
        values = dict(data)
        values["actions"] = tuple(ActionTaken(**a) for a in data.get("actions", ()))
        for key in ("mistakes", "findings", "injected"):
            values[key] = tuple(data.get(key, ()))
        values["soaks"] = tuple(tuple(s) for s in data.get("soaks", ()))
        return cls(**values)

    def lines(self) -> list[str]:
        """The card as plain text lines (headless output, Markdown report)."""

        out = [
            f"DRILL SCORE: {self.title} [{self.scenario}] — {'PASS' if self.passed else 'FAIL'}",
            f"  expected:          {self.expected}"
            + (f" (+{self.tolerance:g}s tolerance: one poll interval)" if self.tolerance else ""),
            f"  first bad sample:  {'none' if self.incident_at is None else f'+{self.incident_at:.1f}s ' + self.incident}",
            f"  time to detect:    {secs(self.time_to_detect)}",
            f"  time to mitigate:  {secs(self.time_to_mitigate)}",
            f"  rollback latency:  {secs(self.rollback_latency)}   failed flag attempts: {self.failed_attempts}",
            "  actions taken:     " + ("; ".join(f"+{a.at:.1f}s {a.action} by {a.actor}" for a in self.actions) or "none"),
            "  mistakes:          " + ("; ".join(self.mistakes) or "none"),
            "  faults injected:   " + ("; ".join(self.injected) or "none"),
            *([f"  soaks shortened:   {soaks_text(self.soaks)}"] if self.soaks else []),
            f"  final state:       {self.final_state} after {self.duration:.1f}s",
        ]
        out += [f"  ✗ {f}" for f in self.findings]
        return out


def soaks_text(soaks: Iterable[tuple[int, float, float]]) -> str:
    """`phase 1 30m → 30s, phase 2 1h → 30s in this drill`: one line, so the card fits 80×24."""
    return ", ".join(f"phase {i} {plan_duration(planned)} → {plan_duration(drill)}" for i, planned, drill in soaks) + " in this drill"


def secs(value: float | None) -> str:
    """Seconds as the card prints them: one decimal, so a verdict and its numbers agree."""
    return "—" if value is None else f"{value:.1f}s"


def _mistakes(entry: JournalEntry, at: float) -> list[str]:
    """What a forced step up overrode that a drill counts as a mistake."""
    overridden: list[str] = entry.data.get("overridden") or []
    red = [o for o in overridden if o.startswith(("gate ", "guardrail ", "exposure: "))]
    missing = [o for o in overridden if o.startswith("checklist:")]
    out = []
    if red:
        out.append(f"+{at:.1f}s stepped up into a red gate: {'; '.join(red)}")
    if missing:
        out.append(f"+{at:.1f}s stepped up with required items missing: {'; '.join(missing)}")
    return out


def _bad_since(entry: JournalEntry) -> float:
    since = entry.data.get("since")
    return float(since) if isinstance(since, (int, float)) else entry.ts


@dataclass(frozen=True)
class Incident:
    """The first bad sample on screen and the response to it, in journal time (for drills and launches)."""

    at: float | None  # the first bad sample; None: nothing bad was ever seen
    what: str
    response: JournalEntry | None  # the first pause or rollback at or after it
    detect: float | None  # bad sample -> that response
    mitigate: float | None  # bad sample -> flags confirmed off


def first_incident(entries: list[JournalEntry]) -> Incident:
    # Earliest bad sample; two guardrails on one metric share a `since`, so order by it alone.
    alarm = min((e for e in entries if e.kind in ALARMS), key=_bad_since, default=None)
    at = None if alarm is None else _bad_since(alarm)
    response = next((e for e in entries if e.kind in RESPONSES and (at is None or e.ts >= at)), None)
    detect = None if response is None or at is None else response.ts - at
    mitigate = next((e.ts - at for e in entries if e.kind == Kind.ROLLBACK_CONFIRMED and at is not None and e.ts >= at), None)
    return Incident(at, alarm.message if alarm else "", response, detect, mitigate)


def compute(entries: Iterable[JournalEntry], scenario: dict[str, Any], final_state: str,
            never_started: Iterable[str] = ()) -> ScoreCard:
    """Score the drill whose `drill.start` is the last one in `entries`.

    `never_started`: the scenario's faults whose time never came; a drill that injected
    nothing proved nothing, so each one fails it.
    """
    entries = list(entries)
    starts = [i for i, e in enumerate(entries) if e.kind == Kind.DRILL_START]
    if starts:
        entries = entries[starts[-1]:]
    t0 = entries[0].ts if entries else 0.0
    expect = scenario["expect"]
    begun = entries[0].data if entries and entries[0].kind == Kind.DRILL_START else {}
    tolerance = float(begun.get("tolerance") or 0.0)
    injected = tuple(f"+{e.data.get('at', e.ts - t0):.1f}s {e.data.get('event', e.message)}"
                     for e in entries if e.kind == Kind.DRILL_FAULT)

    incident = first_incident(entries)
    incident_ts, first, detect, mitigate = incident.at, incident.response, incident.detect, incident.mitigate
    actions: list[ActionTaken] = []
    mistakes: list[str] = []
    for e in entries:
        if e.kind in DECISIONS:
            automatic = bool(e.data.get("actor", {}).get("automatic"))
            actions.append(ActionTaken(e.ts - t0, DECISIONS[e.kind], e.actor, automatic, e.message))
        if e.kind in (Kind.STEP_FORCED, Kind.ROLLOUT_COMPLETE):
            mistakes += _mistakes(e, e.ts - t0)

    responses = [e for e in entries if e.kind in RESPONSES]
    intents = {e.action_id: e.ts for e in entries if e.kind == Kind.ROLLBACK_INTENT}
    confirmed = [e for e in entries if e.kind == Kind.ROLLBACK_CONFIRMED]
    latency = next((e.ts - intents[e.action_id] for e in confirmed if e.action_id in intents), None)

    findings: list[str] = []
    wanted: list[str] = expect["action"]
    if wanted == ["none"]:
        findings += [f"{RESPONSES[e.kind]} at +{e.ts - t0:.1f}s where nothing was needed ({e.message})" for e in responses]
    elif first is None:
        findings.append(f"no {' or '.join(wanted)} at all" + ("" if incident_ts is not None else " (and no bad sample was ever seen)"))
    else:
        kind = RESPONSES[first.kind]
        automatic = bool(first.data.get("actor", {}).get("automatic"))
        if kind not in wanted:
            findings.append(f"first response was {kind}, expected {' or '.join(wanted)}")
        if detect is not None and detect > expect["within"] + tolerance:
            allowed = f" (+{tolerance:g}s tolerance)" if tolerance else ""
            findings.append(f"{kind} came {secs(detect)} after the first bad sample, expected within {expect['within']:g}s{allowed}")
        if expect["by"] != "anyone" and automatic != (expect["by"] == "automatic"):
            findings.append(f"{kind} was by {first.actor}, expected {expect['by']}")
        if "rollback" in wanted and kind == "rollback" and mitigate is None:
            findings.append("the flags were never confirmed off")
    findings += [f"mistake: {m}" for m in mistakes]
    findings += [f"fault never injected: {f}" for f in never_started]

    return ScoreCard(
        scenario=scenario["name"],
        title=scenario["title"],
        expected=scenario.get("expect_label", ""),
        passed=not findings,
        incident_at=None if incident_ts is None else incident_ts - t0,
        incident=incident.what,
        time_to_detect=detect,
        time_to_mitigate=mitigate,
        rollback_latency=latency,
        failed_attempts=sum(1 for e in entries if e.kind.endswith(".attempt")),
        actions=tuple(actions),
        mistakes=tuple(mistakes),
        findings=tuple(findings),
        final_state=final_state,
        duration=(entries[-1].ts - t0) if entries else 0.0,
        started_at=t0,
        dry_run_steps=sum(1 for e in entries if e.kind == Kind.ROLLBACK_STEP and e.data.get("dry_run")),
        tolerance=tolerance,
        soaks=tuple((int(s["phase"]), float(s["planned"]), float(s["drill"])) for s in begun.get("soaks") or ()),
        injected=injected,
    )


def latest_score_card(store: Store) -> ScoreCard | None:
    """The score card of the newest drill in this journal, for the TUI and reports."""
    cards = [e for e in store.entries() if e.kind == Kind.DRILL_SCORE]
    return ScoreCard.from_json(cards[-1].data["card"]) if cards else None
