"""The status line: why a step up is blocked, or exactly what it would change.

The reason is never cut: it wraps to a second line (a third on a tall screen) instead.
"""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

from ...engine.snapshot import Snapshot, State
from ...units import format_value
from ..refresh import set_text


def status_text(snap: Snapshot, retry_key: str = "r") -> tuple[str, str]:
    """(text, severity class) for the most important thing a human should know now."""
    if snap.action is not None:
        what = "ROLLING BACK" if snap.action.kind == "rollback" else "stepping up"
        text = f"{what}: {snap.action.target}"
        if snap.action.attempt:
            text += f" — attempt {snap.action.attempt} failed: {snap.action.last_error}"
        return text, "bad" if snap.action.kind == "rollback" else "info"
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
    if snap.step_blockers:
        return "step up blocked: " + "; ".join(snap.step_blockers), "warn"
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
        text, severity = status_text(snap, self.retry_key)
        for name in ("bad", "warn", "good", "info"):
            self.set_class(severity == name, f"-{name}")
        set_text(self, text)
