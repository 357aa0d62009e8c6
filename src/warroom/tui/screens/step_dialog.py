"""Confirm a step up: exactly what changes, the gate state, and whether it would be forced."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Static

from warroom.core.snapshot import Snapshot
from warroom.tui.screens.under_banner import UnderBanner
from warroom.tui.widgets.checklist import gate_reading

STEP, FORCE = "step", "force"
CHROME = 8  # rows of the box that are not its body: border 2, title and its margin 2, buttons and their margin 4


def dialog_body(snap: Snapshot) -> Text:
    text = Text()
    if snap.environment == "production":
        text.append(" PRODUCTION ", style="bold reverse")
        text.append(" this changes what real users see\n\n")
    text.append("Will change\n", style="bold")
    text.append(f"  {snap.next_change or 'nothing'}\n")
    gates = snap.phase.gates if snap.phase else ()
    if gates:
        text.append("\nGates of this phase\n", style="bold")
        for gate in gates:
            if gate.passed is None:
                text.append(f"  ? {gate.label}: {gate_reading(gate)} ({gate.detail})\n")
            else:
                mark = "✔ green" if gate.passed else "✘ RED"
                text.append(f"  {mark}  {gate.label}: {gate_reading(gate)}\n")
    if snap.step_blockers:
        text.append("\nBlocked by\n", style="bold")
        for blocker in snap.step_blockers:
            text.append(f"  • {blocker}\n")
        text.append("\nThis would be a FORCED step up: you will type a reason, and it is journaled.", style="bold")
    return text


class StepDialog(UnderBanner[str | None]):
    """Returns STEP, FORCE or None (cancelled). Focus starts on Cancel: enter is safe."""

    AUTO_FOCUS = "#cancel"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="dialog.cancel")]
    DEFAULT_CSS = """
    StepDialog #room > Vertical { width: 76; max-width: 100%; height: auto; max-height: 100%;
                            border: thick $primary; background: $surface; padding: 0 1; }
    StepDialog.-production #room > Vertical { border: thick $env-production; }
    StepDialog #room #title { text-style: bold; margin-bottom: 1; }
    StepDialog #room VerticalScroll { height: auto; }
    StepDialog #room Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    StepDialog #room Button { margin-left: 2; }
    """

    def __init__(self, snap: Snapshot) -> None:
        super().__init__()
        self.snapshot = snap

    def dialog(self) -> ComposeResult:
        with Vertical():
            yield Static(id="title", markup=False)
            with VerticalScroll():  # a long list of gates and blockers scrolls; the buttons stay in sight
                yield Static(id="body", markup=False)
            with Horizontal():
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button(id="confirm", variant="warning")

    def on_mount(self) -> None:
        super().on_mount()
        self.set_class(self.snapshot.environment == "production", "-production")
        self.show(self.snapshot)
        # Kept live: gates can turn red while the human reads.
        self.watch(self.app, "snapshot", self._follow, init=False)

    def on_resize(self) -> None:
        # The body gets the room under the banner less the box's frame, title and buttons.
        self.query_one(VerticalScroll).styles.max_height = max(3, self.query_one("#room").size.height - CHROME)

    def _follow(self, snap: Snapshot | None) -> None:
        if snap is not None:
            self.show(snap)

    def show(self, snap: Snapshot) -> None:
        self.snapshot = snap
        self.query_one("#title", Static).update(f"Step up {snap.rollout}")
        self.query_one("#body", Static).update(dialog_body(snap))
        self.query_one("#confirm", Button).label = "Force step up…" if snap.step_blockers else "Step up"

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self.dismiss(FORCE if self.snapshot.step_blockers else STEP)
        else:
            self.dismiss(None)
