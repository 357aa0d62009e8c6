"""A forced step up needs a typed reason; it goes into the journal with the override. A rejection of an
awaited sign-off asks for its note the same way."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Static

from warroom.tui.screens.under_banner import UnderBanner


class ForceReason(UnderBanner[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="dialog.cancel")]
    DEFAULT_CSS = """
    ForceReason #room > Vertical { width: 76; max-width: 100%; height: auto; border: thick $error; background: $surface; padding: 0 1; }
    ForceReason #room Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    ForceReason #room Button { margin-left: 2; }
    """

    def __init__(self, blockers: tuple[str, ...], *, heading: str = "FORCED step up, overriding: ", button: str = "Force step up",
                 ask: str = "why? (required, journaled)") -> None:
        super().__init__()
        self.blockers = blockers
        self.heading, self.button, self.ask = heading, button, ask

    def dialog(self) -> ComposeResult:
        with Vertical():
            yield Static(self.heading + "; ".join(self.blockers), markup=False)
            yield Input(placeholder=self.ask, id="reason")
            with Horizontal():
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button(self.button, id="force", variant="error")

    def on_input_submitted(self) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "force":
            self._submit()
        else:
            self.dismiss(None)

    def _submit(self) -> None:
        reason = self.query_one(Input).value.strip()
        if not reason:
            self.notify("type the reason first", severity="warning")
            return
        self.dismiss(reason)
