"""The console's commands: the keys and dialogs that send a command to the engine (step up, pause/resume,
roll back, retry, a checklist tick, ack, approve, reject), and `send`, which every one goes through.

A mixin of WarroomApp (app.py): Textual finds its `action_*` methods and message handlers on the
App, whose bindings come from the one action table (keymap.py). `send` queues the command in the
store and waits for its outcome in a worker; the outcome comes back as a notice.
"""

from __future__ import annotations

from textual import work

from warroom.client import Asked
from warroom.core.secrets import redact
from warroom.core.snapshot import State
from warroom.core.verbs import Verb
from warroom.tui.console_state import ConsoleState
from warroom.tui.sending import in_daemon_thread
from warroom.tui.widgets.checklist import Checklist


class CommandActions(ConsoleState):
    @work(group="engine-commands")
    async def send(self, label: str, verb: Verb, *, quiet: bool = False, **args: object) -> None:
        """Every command this console sends to the engine goes through here.

        `verb` is a store command (step, pause, resume, rollback, retry, tick, ack), journaled
        by the engine with this console's human; the outcome comes back as a notice (unless
        `quiet`: the screen shows it anyway) or, refused, as the engine's reason.
        """
        try:
            if self.snapshot is not None and self.snapshot.readonly:
                self.notify("read-only console: no action possible", title=f"{label}: refused", severity="error")
                return
            try:
                # A rollback is queued first, whatever this console makes of the engine: the driving engine
                # runs it (the store's clock judges liveness, not this host's); an engine is started only if none drives.
                sent = await self.sending.queue(label, verb, dict(args)) if verb is Verb.ROLLBACK else None
            except Exception as error:  # the store refused the command (a full disk): say it, never crash the screen
                self.notify(redact(str(error)), title=f"{label} not sent", severity="error")
                return
            if verb is Verb.ROLLBACK and sent is None:
                return  # the human stopped trying: said by Sending
            if not isinstance(sent, Asked) and not self.engine_alive and not await self._engine_for(verb, label, sent):
                return
            try:
                if sent is None:
                    sent = await self.sending.queue(label, verb, dict(args))
                    if sent is None:
                        return
                if isinstance(sent, Asked):  # the store could not take it: this host's engine ran it over its local socket
                    command = sent.command
                else:
                    command_id = sent
                    command = await in_daemon_thread(lambda: self.client.wait(command_id, on_away=self.sending.following(label)))
            except Exception as error:  # the store refused the command (a full disk): say it, never crash the screen
                self.notify(redact(str(error)), title=f"{label} not sent", severity="error")
                return
            if not command.done:
                self.notify(f"no answer: the engine stopped before it ran this ({command.status})", title=label, severity="error")
            elif command.status in ("refused", "expired"):
                self.notify(command.message, title=f"{label}: refused", severity="error")
            elif command.status == "failed":
                self.notify(command.message, title=f"{label} failed", severity="error")
            elif not quiet:
                self.notify(command.message, title=label)
        finally:
            if verb is Verb.ROLLBACK:
                self.rollback_requested = False

    def action_stop_trying(self) -> None:
        self.sending.stop_trying()

    async def _engine_for(self, verb: Verb, label: str, rollback: int | None) -> bool:
        """No engine is alive: nothing would run a command. A rollback starts one (rolling back is never
        refused for want of an engine), told which queued command is this console's `rollback`: it runs
        as this person, so it proves who sent it; anything else is refused at once."""
        if verb is not Verb.ROLLBACK:
            self.notify(f"no engine drives this rollout: nothing would run it; start one with `warroom up {self.plan_file}`",
                        title=f"{label}: refused", severity="error")
            return False
        if self.start_engine is None:
            self.notify("no engine drives this rollout: the rollback is queued for the next engine; start one now with "
                        f"`warroom rollback {self.plan_file}` (or `warroom up {self.plan_file}`)",
                        title=f"{label}: waiting for an engine", severity="error")
            return False
        self.notify("no engine drives this rollout: starting one to roll back", title=label, severity="warning")
        start = self.start_engine
        problem = await in_daemon_thread(lambda: start(rollback))
        if problem:
            self.notify(problem, title=f"{label}: not sent", severity="error")
            return False
        return True

    def action_step_up(self) -> None:
        from warroom.tui.screens.force_reason import ForceReason
        from warroom.tui.screens.step_dialog import FORCE, STEP, StepDialog

        snap = self.snapshot
        if snap is None:
            self.notify("waiting for the first reading from the engine", severity="warning")
            return
        # The phase this step moves from, as the screen showed it: the engine refuses a stale one.
        seen = snap.phase.index if snap.phase else 0
        if snap.readonly or snap.force_blockers:
            # Not even a forced step can go now: let the engine say why (it is the authority).
            self.send("step up", Verb.STEP, from_phase=seen)
            return

        def confirmed(choice: str | None) -> None:
            if choice == STEP:
                self.send("step up", Verb.STEP, from_phase=seen)
            elif choice == FORCE:
                self.push_screen(ForceReason(self.snapshot.step_blockers if self.snapshot else ()), forced)
            else:
                self.notify("step up cancelled: nothing changed")

        def forced(reason: str | None) -> None:
            if reason:
                self.send("forced step up", Verb.STEP, force=True, reason=reason, from_phase=seen)
            else:
                self.notify("forced step up cancelled: nothing changed")

        self.push_screen(StepDialog(snap), confirmed)

    def action_pause_resume(self) -> None:
        if self.snapshot is not None and self.snapshot.state == State.PAUSED:
            self.send("resume", Verb.RESUME, quiet=True)
        else:
            self.send("pause", Verb.PAUSE, quiet=True)

    def action_rollback(self) -> None:
        snap = self.snapshot
        # Shown at once, before the engine thread answers; the engine's state replaces it.
        self.rollback_requested = not (snap and (snap.readonly or snap.state.in_rollback))
        self.send("roll back", Verb.ROLLBACK, reason=f"manual rollback from the console by {self.actor.user}")

    def action_retry(self) -> None:
        from warroom.tui.screens.confirm import ConfirmDialog

        snap = self.snapshot
        if snap is None or snap.readonly or snap.state != State.ROLLED_BACK or snap.action is not None:
            self.send("retry", Verb.RETRY)  # the engine says why not
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.send("retry", Verb.RETRY)
            else:
                self.notify("retry cancelled: still ROLLED BACK")

        self.push_screen(ConfirmDialog(
            "Retry the launch?",
            f"This leaves ROLLED BACK and starts again before phase 1. The flags stay as the rollback left them "
            f"until a step up (s) enters phase 1/{snap.phase_count}. Rolled back because: {snap.rollback.reason if snap.rollback else 'see the journal'}",
            "Retry"), answered)

    def on_checklist_toggle(self, message: Checklist.Toggle) -> None:
        item = message.item
        # Toggled again before the engine's answer shows: the opposite of what was last asked,
        # not of the snapshot still on screen (key repeat would otherwise untick twice).
        shown = self.snapshot.phase.checklist if self.snapshot and self.snapshot.phase else ()
        ticked = self._asked.get(item.id, next((i.ticked for i in shown if i.id == item.id), item.ticked))
        self._asked[item.id] = not ticked
        # Routine: the journal line says it; no notice (eleven ticks are not eleven pop-ups).
        self.send("checklist", Verb.TICK, quiet=True, item=item.id, undo=ticked)

    def action_ack_drift(self) -> None:
        self.send("acknowledge drift", Verb.ACK)

    def action_approve(self) -> None:
        # No plan digest from here: the console shows the plan the engine runs (its snapshot), and that is what is approved.
        self.send("approve", Verb.APPROVE, note="from the console")

    def action_reject(self) -> None:
        from warroom.tui.screens.force_reason import ForceReason  # dialogs load when opened

        def rejected(note: str | None) -> None:
            if note:
                self.send("reject", Verb.REJECT, note=note)
            else:
                self.notify("reject cancelled: nothing changed")

        awaiting = (self.snapshot.awaiting,) if self.snapshot else ()
        self.push_screen(ForceReason(awaiting, heading="REJECT the step, which is ", button="Reject", ask="why? (required, in the decision record)"),
                         rejected)
