"""`?`: every key (after the plan's remapping) with what it does now, and the launch words.

The keys come first, in columns (as k9s shows them), so they fit one screen at 80×24 under
the live banner; what each does in full and the words follow, and the help says it scrolls
when it does.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from warroom.tui.screens.under_banner import UnderBanner

# The words the screen uses without explaining them where they stand.
GLOSSARY = (
    ("phase", "one step of exposure: the flag states it sets, a soak, gates and a checklist"),
    ("exposure", "the share of users on the new code: the launch flags' rollout % (a flag on in every phase is not counted); 0% once rolled back"),
    ("soak", "the phase's minimum time before a step up (`soak 12m/1h ▓▓░` in the strip); it stops with no engine"),
    ("gate", "a condition that must be green to step up (✔ green, ✘ red, ? no data)"),
    ("required", "a checklist item marked * must be ticked before a step up (`required 3/9` ticked)"),
    ("guardrail", "a watched condition; breaching for its `for` window it rolls back, pauses or alerts"),
    ("for window", "how long a breach must hold before its guardrail acts (`ROLLBACK IN 12s` counts it down)"),
    ("≤1.00% · last 2m", "under a pane: its breach threshold (`no limit`: none), and the span its chart draws: one cell a poll"),
    ("╌", "a chart's breach threshold; bars past it are drawn in the breach colour"),
    ("≥95.00%", "a pane with a minimum charts how far it fell below its ceiling: a low line is healthy there too"),
    ("▲ / ▼", "beside a value: it breaches, too high / too low"),
    ("NO DATA, STALE", "no answer from the source; a stale value is the last good one, with its age"),
    ("SOURCE ERROR", "a metrics source does not answer, or refuses the queries: which, where, and why, once"),
    ("drift", "a flag changed outside warroom (its UI, another tool); automation waits for an ack"),
    ("ack", "acknowledge drift: accept the flags as observed and let automation go on"),
    ("read back", "after every flag write warroom reads the flag again; only that confirms it"),
    ("desired / observed", "the flag as warroom set it / as the flag service reports it"),
    ("absent", "the flag does not exist in the flag service yet (the first write creates it); it exposes nobody"),
    ("dry run", "a runbook step journaled, not run (the numbers are simulated): nothing was done"),
    ("driver", "the engine that enforces the guardrails (`engine: alice@bastion`); NONE: no engine, nothing acts"),
    ("NO ENGINE", "the launch is in flight and no engine runs: no guardrail acts; `R` starts one to roll back"),
    ("[RW] / [RO]", "this console can act / is read-only (sees everything, changes nothing)"),
    ("data 2s ago", "the age of the newest sample from any source"),
)


@dataclass(frozen=True)
class HelpRow:
    keys: str
    binding_id: str
    description: str
    note: str = ""  # why it cannot act right now
    title: str = ""  # its short name, for the columns


def key_columns(rows: list[HelpRow], columns: int) -> Table:
    """Keys and their short names, `columns` pairs side by side, read down then across."""
    table = Table(box=None, expand=True, show_header=False, padding=(0, 1))
    for _ in range(columns):
        table.add_column(style="bold", no_wrap=True)
        table.add_column(ratio=1)
    cells = [(Text(r.keys), Text(r.title or r.binding_id, style="dim strike" if r.note else "")) for r in rows]
    per = -(-len(cells) // columns)
    for i in range(per):
        row: list[Text] = []
        for c in range(columns):
            index = c * per + i
            row += list(cells[index]) if index < len(cells) else [Text(""), Text("")]
        table.add_row(*row)
    return table


class HelpScreen(UnderBanner[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "dismiss(None)", "Close help", id="help.close"),
    ]
    DEFAULT_CSS = """
    HelpScreen #room > VerticalScroll { width: 110; max-width: 100%; height: auto; max-height: 100%;
                                        border: thick $primary; background: $surface; padding: 0 1; }
    HelpScreen #room .heading { text-style: bold; }
    HelpScreen #room .gap { margin-top: 1; }
    HelpScreen #room #foot { dock: bottom; height: 1; padding: 0 1; color: $text; background: $panel; }
    """

    def __init__(self, rows: list[HelpRow]) -> None:
        super().__init__()
        self.rows = rows

    def dialog(self) -> ComposeResult:
        rows = [*self.rows, HelpRow("tab", "", "move between the checklist and the panes", title="checklist ↔ panes")]
        columns = 2 if self.app.size.width < 120 else 3
        not_now = "; ".join(f"{r.title or r.binding_id} ({r.note})" for r in self.rows if r.note)
        does = Table(box=None, expand=True, show_header=False, padding=(0, 1))
        does.add_column(style="bold", no_wrap=True)
        does.add_column()
        for row in rows:
            does.add_row(Text(row.keys), Text(f"{row.binding_id}: {row.description}" if row.binding_id else row.description))
        words = Table(box=None, expand=True, show_header=False, padding=(0, 1))
        words.add_column(style="bold", no_wrap=True)
        words.add_column()
        for word, meaning in GLOSSARY:
            words.add_row(Text(word), Text(meaning))
        yield Static("Esc, ? or q closes this help.", id="foot", markup=False)
        with VerticalScroll():
            yield Static("Keys (remap any with `keys: {id: key}` in the plan; struck through: not now)",
                         classes="heading", markup=False)
            yield Static(key_columns(rows, columns))
            if not_now:
                yield Static(Text(f"Not now: {not_now}", style="italic"))
            yield Static("Words", classes="heading gap", markup=False)
            yield Static(words)
            yield Static("What each key does (its id for `keys:`)", classes="heading gap", markup=False)
            yield Static(does)

    def on_mount(self) -> None:
        super().on_mount()
        self.call_after_refresh(self._say_if_it_scrolls)

    def on_resize(self) -> None:
        self.call_after_refresh(self._say_if_it_scrolls)

    def _say_if_it_scrolls(self) -> None:
        scroll = self.query_one(VerticalScroll)
        more = scroll.max_scroll_y > 0
        self.query_one("#foot", Static).update(
            "Esc, ? or q closes · ↓ PgDn scroll: more below (the words, what each key does)" if more else "Esc, ? or q closes this help.")
