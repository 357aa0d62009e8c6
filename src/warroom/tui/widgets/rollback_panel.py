"""After a rollback, in place of the checklist: what happened and what can be done next.

ROLLED BACK is dated when the flags read back off (not when it was asked: a flag API can
take many attempts); a runbook step that ran in dry run says so before its name, and
gets no tick: nothing ran.
"""

from __future__ import annotations

from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive

from warroom.core.snapshot import Snapshot, State
from warroom.core.statuses import RunbookStepStatus
from warroom.tui.clock_text import clock_text
from warroom.tui.parts import Parts
from warroom.tui.refresh import changed

STEP_MARK = {RunbookStepStatus.OK: "✔", RunbookStepStatus.FAILED: "✘", RunbookStepStatus.DRY_RUN: "·", RunbookStepStatus.PENDING: "○"}


def launch_confirmed(snap: Snapshot) -> str:
    """The confirmed read-back of the flags the launch moves (a health check it left on is no news)."""
    confirmed = snap.rollback.confirmed if snap.rollback else ""
    launch = set(snap.launch_flags)
    parts = [p for p in confirmed.split(", ") if p and (not launch or p.rpartition(" ")[0] in launch)]
    return ", ".join(parts)


class RollbackPanel(Parts):
    PARTS = {"heading": "$error bold", "label": "$text-muted", "ok": "$success", "bad": "$error bold", "next": "$accent bold"}
    DEFAULT_CSS = """
    RollbackPanel { height: auto; padding: 0 1; background: $surface; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)
    retry_key: reactive[str] = reactive("r")

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        if snap is not None and changed(self, (snap.state, snap.rollback, snap.action, snap.flags, snap.notes)):
            self.refresh(layout=True)

    def _style(self, name: str):
        return self.part(name)

    def _lines(self, width: int) -> list[Text]:
        snap = self.snapshot
        if snap is None or not snap.state.in_rollback:
            return []
        back = snap.rollback
        done = snap.state == State.ROLLED_BACK
        label = self._style("label")
        head = "ROLLED BACK" if done else "ROLLING BACK"
        if back is None:  # the journal's tail no longer holds it (a long time ago)
            return [Text(head, style=self._style("heading")), Text("its details: warroom journal", style=label)]
        by = "automation" if back.by == "auto" else back.by.split()[0]
        # ROLLED BACK when the flags read back off; when it was asked, and by whom, under it.
        when = back.confirmed_at if done and back.confirmed_at is not None else back.started_at
        lines = [Text(f"{head} {'at' if done else 'since'} {clock_text(when)}", style=self._style("heading")),
                 Text.assemble(("asked  ", label), f"{clock_text(back.started_at)} by {by}")]
        # The cause is the one line worth wrapping: it says which query, value and threshold.
        for index, part in enumerate(Text(back.reason).wrap(self.app.console, max(20, width - 7))[:3]):
            lines.append(Text.assemble(("why    " if index == 0 else "       ", label), part))
        if snap.notes:  # confirmed once, but a flag reads back exposed again: not done
            lines.append(Text.assemble(("flags  ", label), (f"✘ {snap.notes[0]}", self._style("bad"))))
        elif back.confirmed_at is not None:
            confirmed = launch_confirmed(snap)
            off = all(part.endswith(" off") for part in confirmed.split(", "))
            lines.append(Text.assemble(("flags  ", label), ("✔ confirmed off by read-back" if off else "✔ confirmed by read-back", self._style("ok")),
                                       "" if off else f": {confirmed}"))
        else:
            action = snap.action
            retrying = f"attempt {action.attempt} failed, retrying: {action.last_error}" if action and action.attempt else "writing"
            lines.append(Text.assemble(("flags  ", label), (f"→ {action.target if action else 'off'}: {retrying}", self._style("bad"))))
        if back.steps:
            lines.append(Text("runbook", style=label))
            for step in back.steps:
                if step.status == RunbookStepStatus.DRY_RUN:  # said first, so 80 columns never cut it off
                    summary = step.summary.removeprefix("dry run: ")
                    lines.append(Text.assemble((f"  {STEP_MARK[step.status]} dry run  ", label), step.name,
                                               (f"  {summary}" if summary else "", label)))
                    continue
                style = self._style("bad" if step.status == RunbookStepStatus.FAILED else "ok" if step.status != RunbookStepStatus.PENDING else "label")
                note = {RunbookStepStatus.FAILED: " FAILED", RunbookStepStatus.PENDING: " pending"}.get(step.status, "")
                lines.append(Text.assemble((f"  {STEP_MARK[step.status]} ", style), step.name, (note, style),
                                           (f"  {step.summary}" if step.summary else "", label)))
        if done and snap.action is None and not snap.readonly:
            lines.append(Text.assemble(("next   ", label), (f"{self.retry_key} retry", self._style("next")),
                                       ": start again at phase 1 (asks first)"))
        return lines

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._lines(width))

    def render(self) -> Text:
        lines = self._lines(self.content_region.width)
        for line in lines:
            line.no_wrap, line.overflow = True, "ellipsis"
        return Text("\n").join(lines)
