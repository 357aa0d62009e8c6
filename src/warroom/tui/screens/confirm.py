"""A yes/no question before something that cannot be taken back; focus starts on the safe answer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from warroom.tui.screens.under_banner import UnderBanner


class ConfirmDialog(UnderBanner[bool]):
    """Returns True for the confirm button; Enter on the initial focus (cancel) is safe."""

    AUTO_FOCUS = "#cancel"
    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel", id="dialog.cancel")]
    DEFAULT_CSS = """
    ConfirmDialog #room > Vertical { width: 64; max-width: 100%; height: auto; border: thick $error; background: $surface; padding: 0 1; }
    ConfirmDialog #room #title { text-style: bold; margin-bottom: 1; }
    ConfirmDialog #room Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    ConfirmDialog #room Button { margin-left: 2; }
    """

    def __init__(self, title: str, body: str, confirm: str, cancel: str = "Cancel") -> None:
        super().__init__()
        self.title_text, self.body, self.confirm, self.cancel = title, body, confirm, cancel

    def dialog(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, id="title", markup=False)
            yield Static(self.body, markup=False)
            with Horizontal():
                yield Button(self.cancel, id="cancel", variant="primary")
                yield Button(self.confirm, id="confirm", variant="error")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")
