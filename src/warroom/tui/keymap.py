"""Every console action in one table: bindings, footer hints, `?` help and the `:` palette
are all made from it, so a key, its label and its description cannot drift apart.

What an action can do right now (shown, struck through with a reason, or hidden because
it has no meaning in this state) comes from the snapshot alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType

from warroom.core.snapshot import Snapshot, State


@dataclass(frozen=True)
class ConsoleAction:
    id: str  # the binding id: a plan's `keys:` remaps it
    keys: str  # default keys, comma-separated; "" for a palette-only action
    action: str  # the Textual action it runs
    title: str  # its name in the palette and in `?`
    does: str  # what it does, for `?` and the palette
    hint: str = ""  # footer label; "" keeps it out of the footer
    scope: str = "app"  # app | checklist | pane: which widget holds the binding
    loud: bool = False  # the rollback key stands out
    changes: bool = False  # changes the launch: refused on a read-only console


# In footer order, most important first: a narrow footer drops hints from the end.
ACTIONS: tuple[ConsoleAction, ...] = (
    ConsoleAction("step_up", "s", "step_up", "Step up",
                  "step up to the next phase: a dialog shows exactly what changes and the gates, focus on Cancel; "
                  "a blocked step is a forced step that asks for a typed reason", "step", changes=True),
    ConsoleAction("pause_resume", "p", "pause_resume", "Pause / resume", "hold automation and step-ups, or go on",
                  "pause", changes=True),
    ConsoleAction("rollback", "R", "rollback", "Roll back now",
                  "flags to their rollback state, then the runbook: one key, no dialog (the safe direction), journaled",
                  "ROLLBACK", loud=True, changes=True),
    ConsoleAction("retry", "r", "retry", "Retry after a rollback",
                  "leave ROLLED BACK and start again at phase 1 (asks first, focus on Cancel)", "retry", changes=True),
    ConsoleAction("checklist.tick", "space,enter", "tick_item", "Tick / untick selected item",
                  "tick or untick the selected item of the current phase", "tick", scope="checklist", changes=True),
    ConsoleAction("checklist.up", "up,k", "cursor(-1)", "Previous checklist item", "move up the checklist",
                  scope="checklist"),
    ConsoleAction("checklist.down", "down,j", "cursor(1)", "Next checklist item", "move down the checklist",
                  scope="checklist"),
    ConsoleAction("ack_drift", "a", "ack_drift", "Acknowledge flag drift",
                  "accept the flags as observed (changed outside warroom); automation goes on", "ack", changes=True),
    ConsoleAction("approve", "A", "approve", "Approve the awaited step",
                  "sign off the step up that awaits approval, as the account this console runs as (the engine proves it)",
                  "approve", changes=True),
    ConsoleAction("reject", "", "reject", "Reject the awaited step",
                  "refuse the step up that awaits approval, with a note saying why: it does not happen", changes=True),
    ConsoleAction("help", "question_mark", "help", "Help", "every key, and the launch words", "help"),
    ConsoleAction("quit", "q", "quit_console", "Quit",
                  "close this console (the rollout goes on); asks while a rollback is in flight", "quit"),
    ConsoleAction("zoom", "z", "zoom", "Zoom a pane",
                  "the focused pane (else the most alarming one) full-screen: longer history, threshold, "
                  "the guardrail's `for` window", "zoom"),
    ConsoleAction("pane.zoom", "enter", "zoom", "Zoom this pane", "the focused pane full-screen (tab focuses panes)",
                  scope="pane"),
    ConsoleAction("palette", "colon,ctrl+p", "command_palette", "Command palette", "every action by name, with its key", "cmds"),
    ConsoleAction("theme", "t", "cycle_theme", "Cycle theme", "the next of warroom's themes", "theme"),
    ConsoleAction("score_card", "", "score_card", "Drill score card", "the latest drill's score, from the journal"),
    ConsoleAction("stop_trying", "escape", "stop_trying", "Stop retrying a rollback",
                  "while the store cannot be reached, stop retrying a rollback not sent yet"),
)

BY_ID = {a.id: a for a in ACTIONS}


def bindings(scope: str) -> list[BindingType]:
    """The Textual bindings of one scope, each with its id (App.set_keymap remaps by id)."""
    return [Binding(a.keys, a.action, a.title, show=False, id=a.id) for a in ACTIONS if a.scope == scope and a.keys]


@dataclass(frozen=True)
class Availability:
    shown: bool = True  # has a meaning in this state (else it leaves the footer)
    enabled: bool = True
    reason: str = ""  # why it cannot act now
    label: str = ""  # a footer label for this state, when it differs


def availability(action: ConsoleAction, snap: Snapshot | None) -> Availability:
    """Whether `action` can act on the launch as `snap` shows it, and why not."""
    if snap is None:
        return Availability(action.id in ("help", "quit"), action.id in ("help", "quit"), "waiting for the engine")
    if action.changes and snap.readonly:
        return Availability(False, False, "read-only console")
    state = snap.state
    if action.id == "step_up":
        if state.in_rollback or state == State.COMPLETE:
            return Availability(False, False, f"state is {state.label}")
        return Availability(True, not snap.step_blockers, "; ".join(snap.step_blockers))
    if action.id == "pause_resume":
        live = state.in_phase
        return Availability(live, live, "" if live else f"state is {state.label}", "resume" if state == State.PAUSED else "")
    if action.id == "rollback":
        return Availability(not state.in_rollback, not state.in_rollback, f"state is {state.label}" if state.in_rollback else "")
    if action.id == "retry":
        if state != State.ROLLED_BACK:
            return Availability(False, False, "only after a rollback")
        return Availability(True, snap.action is None, "the rollback's runbook is still running" if snap.action else "")
    if action.id == "checklist.tick":
        has_items = bool(snap.phase and snap.phase.checklist) and state.in_phase
        return Availability(has_items, has_items, "" if has_items else "no checklist item to tick now")
    if action.id in ("approve", "reject"):
        return Availability(bool(snap.awaiting), bool(snap.awaiting), snap.awaiting or "nothing awaits sign-off")
    if action.id == "ack_drift":
        return Availability(snap.drift, snap.drift, "" if snap.drift else "no drift")
    return Availability()
