"""A drill's score card, shown over the console the moment the drill is scored."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from warroom.reports.scorecard import ScoreCard
from warroom.tui.screens.under_banner import UnderBanner


class ScoreCardScreen(UnderBanner[None]):
    BINDINGS = [Binding("escape,enter,q", "dismiss(None)", "Close the score card", id="score.close")]
    DEFAULT_CSS = """
    ScoreCardScreen #room > VerticalScroll { width: 110; max-width: 100%; height: auto; max-height: 100%;
                                       border: thick $success; background: $surface; padding: 0 1; }
    ScoreCardScreen.-fail #room > VerticalScroll { border: thick $error; }
    ScoreCardScreen #room #verdict { text-style: bold; color: $success; }
    ScoreCardScreen.-fail #room #verdict { color: $error; }
    """

    def __init__(self, card: ScoreCard) -> None:
        super().__init__(classes="" if card.passed else "-fail")
        self.card = card

    def dialog(self) -> ComposeResult:
        title, *rest = self.card.lines()
        with VerticalScroll():
            yield Static(title, id="verdict", markup=False)
            yield Static("\n".join(rest), markup=False)
            yield Static("\nSaved in the journal (drill.score). Esc closes; `:` → Drill score card shows it again; "
                         "q on the console quits and prints it.", markup=False)
