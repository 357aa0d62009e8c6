"""`?`: every key (after the plan's remapping) with what it does now, and the launch words."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

# The words the screen uses without explaining them where they stand.
GLOSSARY = (
    ("phase", "one step of exposure: the flag states it sets, a soak, gates and a checklist"),
    ("exposure", "the share of users who see the new code (a flag's rollout %); 0% once rolled back"),
    ("soak", "the phase's minimum time before a step up (`soak 12m/1h ▓▓░` in the strip)"),
    ("gate", "a condition that must be green to step up (✔ green, ✘ red, ? no data)"),
    ("required", "a checklist item marked * must be ticked before a step up (`required 3/9` ticked)"),
    ("guardrail", "a watched condition; breaching for its `for` window it rolls back, pauses or alerts"),
    ("for window", "how long a breach must hold before its guardrail acts (`ROLLBACK IN 12s` counts it down)"),
    ("≤1.00% · last 2m", "under a pane: its breach threshold, and the span of its chart (one cell a poll)"),
    ("╌", "a chart's breach threshold; bars past it are drawn in the breach colour"),
    ("▲ / ▼", "beside a value: it breaches, too high / too low"),
    ("NO DATA, STALE", "no answer from the source; a stale value is the last good one, with its age"),
    ("drift", "a flag changed outside warroom (its UI, another tool); automation waits for an ack"),
    ("ack", "acknowledge drift: accept the flags as observed and let automation go on"),
    ("read back", "after every flag write warroom reads the flag again; only that confirms it"),
    ("desired / observed", "the flag as warroom set it / as the flag service reports it"),
    ("absent", "the flag does not exist in the flag service yet (the first write creates it)"),
    ("driver", "the console whose engine enforces the guardrails (`driving`: this one)"),
    ("[RW] / [RO]", "this console can act / is read-only (sees everything, changes nothing)"),
    ("data 2s ago", "the age of the newest sample from any source"),
)


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
    HelpScreen > VerticalScroll { width: 110; max-width: 100%; height: auto; max-height: 100%;
                                  border: thick $primary; background: $surface; padding: 0 1; }
    HelpScreen .heading { text-style: bold; margin-top: 1; }
    """

    def __init__(self, rows: list[HelpRow]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        keys = Table(box=None, expand=True, show_header=True, padding=(0, 1))
        keys.add_column("key", style="bold", no_wrap=True)
        keys.add_column("id", no_wrap=True)
        keys.add_column("does")
        for row in self.rows:
            does = Text(row.description)
            if row.note:
                does.append(f"  (not now: {row.note})", style="italic")
            keys.add_row(Text(row.keys), Text(row.binding_id), does)
        keys.add_row(Text("tab"), Text(""), Text("move between the checklist and the panes"))
        words = Table(box=None, expand=True, show_header=False, padding=(0, 1))
        words.add_column(style="bold", no_wrap=True)
        words.add_column()
        for word, meaning in GLOSSARY:
            words.add_row(Text(word), Text(meaning))
        with VerticalScroll():
            yield Static("Keys (remap any with `keys: {id: key}` in the plan)", classes="heading", markup=False)
            yield Static(keys)
            yield Static("Words", classes="heading", markup=False)
            yield Static(words)
            yield Static("Esc, ? or q closes this help.", markup=False)
