"""Every key, its binding id (for `keys:` in the plan) and what it does now."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


@dataclass(frozen=True)
class HelpRow:
    keys: str
    binding_id: str
    description: str
    note: str = ""  # why it cannot act right now


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "dismiss(None)", "Close help", id="help.close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 100; max-width: 100%; height: auto; max-height: 100%;
                                  border: thick $primary; background: $surface; padding: 0 1; }
    """

    def __init__(self, rows: list[HelpRow]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(box=None, expand=True, title="warroom keys (remap with `keys:` in the plan, by id)")
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("id", no_wrap=True)
        table.add_column("does")
        for row in self.rows:
            table.add_row(row.keys, row.binding_id, row.description + (f"  ({row.note})" if row.note else ""))
        with VerticalScroll():
            yield Static(table)
            yield Static("Esc, ? or q closes this help.", markup=False)
