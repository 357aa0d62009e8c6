"""The status line: why a step up is blocked, or exactly what it would change.

The reason is never cut: it wraps to a second line (a third on a tall screen), and a list
of reasons too long even for that loses each reason's details, never a reason.
"""

from __future__ import annotations

import re

from rich.cells import cell_len
from textual.reactive import reactive
from textual.widgets import Static

from ...engine.snapshot import Snapshot, State
from ...units import format_value
from ..refresh import set_text


def short_blocker(blocker: str) -> str:
    """A blocker without its details: `gate X: no data` for `gate X: no data (the source's error)`,
    `checklist: 2 required item(s) not ticked` without the items (the checklist shows them)."""
    head = re.sub(r" \([^()]*\)$", "", blocker)
    return ": ".join(head.split(": ")[:2])


def blockers_text(blockers: tuple[str, ...], room: int | None = None) -> str:
    """The reasons a step up is blocked, in at most `room` cells when that can be done:
    whole; else each without its details; else gates and guardrails counted, by kind."""
    whole = "; ".join(blockers)
    if room is None or cell_len(whole) <= room:
        return whole
    short = [short_blocker(b) for b in blockers]
    if cell_len("; ".join(short)) <= room:
        return "; ".join(short)
    counted: dict[str, int] = {}
    for blocker in blockers:
        kind = blocker.split(" ", 1)[0]
        if kind in ("gate", "guardrail"):
            counted[kind] = counted.get(kind, 0) + 1
    parts = [b for b in short if b.split(" ", 1)[0] not in counted]
    parts += [f"{n} {kind}{'s' if n > 1 else ''} not green" for kind, n in counted.items()]
    return "; ".join(parts)


def status_text(snap: Snapshot, retry_key: str = "r", room: int | None = None) -> tuple[str, str]:
    """(text, severity class) for the most important thing a human should know now.

    With `room` (cells over the lines it may wrap to), a list of step blockers too long for
    it is shortened blocker by blocker rather than cut at the end: every reason stays.
    """
    if snap.action is not None:
        what = "ROLLING BACK" if snap.action.kind == "rollback" else "stepping up"
        text = f"{what}: {snap.action.target}"
        if snap.action.attempt:
            text += f" — attempt {snap.action.attempt} failed: {snap.action.last_error}"
        return text, "bad" if snap.action.kind == "rollback" else "info"
    if snap.notes:  # the engine's own warnings: a rollback that is not done after all
        return "; ".join(snap.notes), "bad"
    if snap.drift:
        return "flag DRIFT: changed outside warroom; automation paused until acknowledged (a)", "bad"
    if snap.state == State.PAUSED:
        return f"paused: {snap.paused_reason}", "warn"
    if snap.state == State.ROLLED_BACK:
        retry = "" if snap.readonly else f"; {retry_key} retries from phase 1"
        return f"rolled back: flags confirmed off by read-back{retry}", "bad"
    if snap.state == State.COMPLETE:
        return "rollout complete", "good"
    breaching = [g for g in snap.guardrails if g.status in ("pending", "breach")]
    if breaching:
        g = breaching[0]
        return f"guardrail {g.id}: {g.target} {format_value(g.value, g.unit)} {g.op} {format_value(g.threshold, g.unit)} → {g.action}", "bad"
    if snap.readonly:
        return "read-only console: it shows everything and changes nothing" + (f"; next: {snap.next_change}" if snap.next_change else ""), "info"
    if snap.step_blockers:
        return "step up blocked: " + blockers_text(snap.step_blockers, None if room is None else room - 17), "warn"
    if snap.next_change:
        return f"ready: {snap.next_change}", "good"
    return "", "info"


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: auto; max-height: 2; padding: 0 1; background: $panel; }
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
        lines = int(self.styles.max_height.value) if self.styles.max_height else 2
        # Wrapping breaks lines at spaces: leave a few cells a line for that.
        text, severity = status_text(snap, self.retry_key, room=lines * max(10, width - 6))
        for name in ("bad", "warn", "good", "info"):
            self.set_class(severity == name, f"-{name}")
        set_text(self, text)

    def on_resize(self) -> None:
        self.watch_snapshot(self.snapshot)
