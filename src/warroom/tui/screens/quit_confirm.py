"""Quitting while a rollback is in flight stops it here; ask first (the next console finishes it)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class QuitConfirm(ModalScreen[bool]):
    AUTO_FOCUS = "#stay"
    BINDINGS = [Binding("escape", "dismiss(False)", "Stay", id="dialog.cancel")]
    DEFAULT_CSS = """
    QuitConfirm { align: center middle; }
    QuitConfirm > Vertical { width: 64; max-width: 100%; height: auto; border: thick $error; background: $surface; padding: 0 1; }
    QuitConfirm Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    QuitConfirm Button { margin-left: 2; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                "A rollback is in flight. Quitting stops this console's work on it; "
                "it is journaled write-ahead, so the next console to start finishes it.\n\nQuit anyway?",
                markup=False,
            )
            with Horizontal():
                yield Button("Stay", id="stay", variant="primary")
                yield Button("Quit anyway", id="quit", variant="error")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "quit")
