"""The status line: why a step up is blocked, or exactly what it would change.

The reason is never cut: it wraps to a second line (a third on a tall screen), and a list
of reasons too long even for that loses each reason's details, never a reason.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable

from textual.reactive import reactive
from textual.widgets import Static

from warroom.core.action_kinds import ActionKind
from warroom.core.condition import source_down_text
from warroom.core.snapshot import Snapshot, State
from warroom.core.units import format_value
from warroom.tui.clock_text import clock_text
from warroom.tui.refresh import set_text


def short_blocker(blocker: str) -> str:
    """A blocker without its details: `gate X: no data` for `gate X: no data (the source's error)`,
    `checklist: 2 required item(s) not ticked` without the items (the checklist shows them)."""
    head = re.sub(r" \([^()]*\)$", "", blocker)
    return ": ".join(head.split(": ")[:2])


# The last resort for a list of reasons too long for the status line: each kind in a few words.
IN_A_WORD = {"checklist": "required items not ticked", "exposure": "exposure check"}


def blockers_text(blockers: tuple[str, ...], fits: Callable[[str], bool] = lambda _: True) -> str:
    """The reasons a step up is blocked, as told in full when that `fits`; else each
    without its details; else gates and guardrails counted; else the checklist and the
    exposure check in a few words too. No reason is ever left out."""
    short = [short_blocker(b) for b in blockers]

    def kind(blocker: str) -> str:
        return blocker.split(" ", 1)[0].rstrip(":")

    def counted(kinds: tuple[str, ...]) -> list[str]:
        parts, seen = [], set()
        for blocker in short:
            k = kind(blocker)
            if k not in kinds:
                parts.append(blocker)
            elif k not in seen:
                seen.add(k)
                n = sum(kind(b) == k for b in short)
                parts.append(IN_A_WORD.get(k) or f"{n} {k}{'s' if n > 1 else ''} not green")
        return parts

    for parts in (list(blockers), short, counted(("gate", "guardrail")), counted(("gate", "guardrail", *IN_A_WORD))):
        if fits("; ".join(parts)):
            break
    return "; ".join(parts)


def wraps_within(width: int, lines: int) -> Callable[[str], bool]:
    """Whether a text wrapped at spaces to `width` takes at most `lines` lines."""
    return lambda text: len(textwrap.wrap(text, max(10, width))) <= lines


def steady(blocker: str, snap: Snapshot) -> str:
    """The soak as the moment it ends (`soak: until 08:00:20Z`) rather than a countdown: the
    phase strip counts it down; a line that changes every second costs bytes over SSH."""
    phase = snap.phase
    if blocker.startswith("soak:") and phase is not None and phase.started_at is not None:
        return f"soak: until {clock_text(phase.started_at + phase.hold)}"
    return blocker


def status_text(snap: Snapshot, retry_key: str = "r", fits: Callable[[str], bool] = lambda _: True) -> tuple[str, str]:
    """(text, severity class) for the most important thing a human should know now, and, after it,
    a stakeholder update that is overdue (the owner is reminded on the channel too).

    A list of step blockers that does not `fit` is shortened blocker by blocker rather than
    cut at the end: every reason stays. Paused or read-only, what else holds the next step
    is still said: resuming, or asking someone with a read-write console, is not all it takes.
    """
    overdue = snap.updates is not None and snap.updates.overdue
    if not overdue:
        return _status_text(snap, retry_key, fits)
    assert snap.updates is not None
    reminder = f"stakeholder update OVERDUE ({snap.updates.owner}): warroom update PLAN --approve"
    text, severity = _status_text(snap, retry_key, lambda text: fits(f"{text} · {reminder}"))
    return (f"{text} · {reminder}" if text else reminder), "bad" if severity == "bad" else "warn"


def _status_text(snap: Snapshot, retry_key: str, fits: Callable[[str], bool]) -> tuple[str, str]:
    if snap.action is not None:
        what = "ROLLING BACK" if snap.action.kind == ActionKind.ROLLBACK else "stepping up"
        text = f"{what}: {snap.action.target}"
        if snap.action.attempt:
            text += f" — attempt {snap.action.attempt} failed: {snap.action.last_error}"
        return text, "bad" if snap.action.kind == ActionKind.ROLLBACK else "info"
    if snap.notes:  # the engine's own warnings: a rollback that is not done after all
        return "; ".join(snap.notes), "bad"
    if snap.drift:
        return "flag DRIFT: changed outside warroom; automation paused until acknowledged (a)", "bad"
    if snap.state == State.ROLLED_BACK:
        retry = "" if snap.readonly else f"; {retry_key} retries from phase 1"
        return f"rolled back: flags confirmed off by read-back{retry}", "bad"
    if snap.state == State.COMPLETE:
        return "rollout complete", "good"
    breaching = [g for g in snap.guardrails if g.status.breaching and g.mode != "shadow"]
    if breaching:
        g = breaching[0]
        reading = g.shown or f"{g.target} {format_value(g.value, g.unit)} {g.op} {format_value(g.threshold, g.unit)}"
        if not snap.automation:  # nothing will act on it: say what would have, not what will
            return f"guardrail {g.id}: {reading}; would {g.action.phrase}, but no engine enforces it", "bad"
        return f"guardrail {g.id}: {reading} → {g.action}", "bad"
    leads, severity = [], "warn"
    if snap.state == State.PAUSED:
        reason = snap.paused_reason or "paused"
        leads.append(reason if reason.lower().startswith("paused") else f"paused: {reason}")
    elif snap.readonly:
        leads.append("read-only console: it shows everything and changes nothing")
        severity = "info"
    if snap.sources_down:
        leads.append(f"source error: {source_down_text(snap)}")
        severity = "warn"
    lead = "; ".join(leads)
    blockers = tuple(steady(b, snap) for b in snap.step_blockers if not b.startswith("state is "))
    if blockers:
        head = f"{lead}; step up blocked: " if lead else "step up blocked: "
        return head + blockers_text(blockers, lambda text: fits(head + text)), severity
    if snap.next_change:
        scheduled = f"; scheduled: {snap.next_scheduled}" if snap.next_scheduled else ""
        return (f"{lead}; next: {snap.next_change}" if lead else f"ready: {snap.next_change}") + scheduled, severity if lead else "good"
    return lead, severity if lead else "info"


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: auto; max-height: 2; padding: 0 1; background: $panel; }
    StatusLine.-lead { max-height: 3; }
    StatusLine.-bad { color: $error; text-style: bold; }
    StatusLine.-warn { color: $warning; }
    StatusLine.-good { color: $success; }
    """

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)  # parts update themselves
    retry_key: reactive[str] = reactive("r")

    def __init__(self, **kw) -> None:
        super().__init__(markup=False, **kw)

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        if snap is None:
            return
        width = self.content_region.width or self.app.size.width - 2
        lines = 3 if self.screen.has_class("-tall") or self.screen.has_class("-huge") else 2  # app.tcss
        # A line more when something leads the reasons (paused, read-only, a source down): every reason still shows.
        lead = snap.state == State.PAUSED or snap.readonly or bool(snap.sources_down)
        self.set_class(lead, "-lead")
        text, severity = status_text(snap, self.retry_key, wraps_within(width, lines + lead))
        for name in ("bad", "warn", "good", "info"):
            self.set_class(severity == name, f"-{name}")
        set_text(self, text)

    def on_resize(self) -> None:
        self.watch_snapshot(self.snapshot)
