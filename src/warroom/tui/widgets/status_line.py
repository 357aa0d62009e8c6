"""One line under the panes: why the next step is blocked, or exactly what it would change."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

from ...snapshot import Snapshot, State
from ...units import format_value
from ..refresh import set_text


def status_text(snap: Snapshot) -> tuple[str, str]:
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
        return "rolled back: flags confirmed off by read-back; see the timeline", "bad"
    if snap.state == State.COMPLETE:
        return "rollout complete", "good"
    breaching = [g for g in snap.guardrails if g.status in ("pending", "breach") and g.mode != "shadow"]
    if breaching:
        g = breaching[0]
        reading = g.shown or f"{g.target} {format_value(g.value, g.unit)} {g.op} {format_value(g.threshold, g.unit)}"
        return f"guardrail {g.id}: {reading} → {g.action}", "bad"
    if snap.step_blockers:
        return "step up blocked: " + "; ".join(snap.step_blockers), "warn"
    if snap.next_change:
        return f"ready: {snap.next_change}", "good"
    return "", "info"


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; background: $panel; }
    StatusLine.-bad { color: $error; text-style: bold; }
    StatusLine.-warn { color: $warning; }
    StatusLine.-good { color: $success; }
    """

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)  # parts update themselves

    def __init__(self, **kw) -> None:
        super().__init__(markup=False, **kw)

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        if snap is None:
            return
        text, severity = status_text(snap)
        for name in ("bad", "warn", "good", "info"):
            self.set_class(severity == name, f"-{name}")
        set_text(self, text)
