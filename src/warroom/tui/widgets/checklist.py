"""The current phase: its gates (value vs threshold) and its checklist, tickable."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from ...snapshot import ChecklistView, GateView, Snapshot
from ...units import format_value
from ..refresh import changed


def gate_reading(gate: GateView) -> str:
    """`0.041% < 0.10%`: the value against the threshold, with the relation that holds now."""
    if gate.shown:  # a cohort comparison or the exposure check says it in its own words
        return gate.shown
    good, bad = (">", "≤") if gate.op == "above" else ("<", "≥")
    limit = "" if gate.threshold is None else format_value(gate.threshold, gate.unit)
    if gate.value is None:
        return f"no data (needs {good} {limit})" if limit else "no data"
    value = format_value(gate.value, gate.unit)
    return f"{value} {good if gate.passed else bad} {limit}" if limit else value


class Checklist(Widget, can_focus=True):
    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Previous item", show=False, id="checklist.up"),
        Binding("down,j", "cursor(1)", "Next item", show=False, id="checklist.down"),
        Binding("space,enter", "toggle", "Tick / untick the selected item", id="checklist.tick"),
    ]
    COMPONENT_CLASSES = {
        "checklist--heading",
        "checklist--pass",
        "checklist--fail",
        "checklist--nodata",
        "checklist--cursor",
        "checklist--done",
        "checklist--required",
    }
    DEFAULT_CSS = """
    Checklist { height: 1fr; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; background: $surface; }
    Checklist > .checklist--heading { text-style: bold; color: $primary; }
    Checklist > .checklist--pass { color: $success; }
    Checklist > .checklist--fail { color: $error; text-style: bold; }
    Checklist > .checklist--nodata { color: $status-stale; text-style: italic; }
    Checklist > .checklist--cursor { text-style: reverse; }
    Checklist > .checklist--done { color: $text-muted; }
    Checklist > .checklist--required { color: $warning; text-style: bold; }
    Checklist:focus > .checklist--cursor { text-style: bold reverse; }
    """

    class Toggle(Message):
        """The user asked to tick (or untick) a checklist item of the current phase."""

        def __init__(self, item: ChecklistView) -> None:
            super().__init__()
            self.item = item

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)
    cursor: reactive[int] = reactive(0)

    @property
    def items(self) -> tuple[ChecklistView, ...]:
        snap = self.snapshot
        return snap.phase.checklist if snap and snap.phase else ()

    @property
    def selected(self) -> ChecklistView | None:
        items = self.items
        return items[min(self.cursor, len(items) - 1)] if items else None

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.items) - 1))

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        self.cursor = self.cursor  # clamp to the new phase's items
        phase = snap.phase if snap is not None else None
        key = (snap is None, snap and snap.next_change, phase and (phase.index, phase.name, phase.gates, phase.checklist))
        if changed(self, key):
            self.refresh()

    def action_cursor(self, delta: int) -> None:
        self.cursor += delta

    def action_toggle(self) -> None:
        if self.selected is not None:
            self.post_message(self.Toggle(self.selected))
        else:
            self.notify("no checklist item to tick in this phase", severity="warning")

    def _style(self, name: str):
        return self.get_component_rich_style(f"checklist--{name}")

    def render(self) -> Text:
        snap = self.snapshot
        if snap is None:
            return Text("waiting for the engine…")
        if snap.phase is None:
            text = Text(f"Not started: {snap.phase_count} phases", style=self._style("heading"))
            text.append(f"\nnext: {snap.next_change}" if snap.next_change else "", style="")
            return text
        phase = snap.phase
        lines: list[Text] = [Text.assemble((f"Phase {phase.index}/{snap.phase_count} {phase.name}", self._style("heading")),
                                           ("  * required" if any(i.required for i in phase.checklist) else "", self._style("required")))]
        for gate in phase.gates:
            if gate.passed is None:
                mark, style = "?", "nodata"
            else:
                mark, style = ("✔", "pass") if gate.passed else ("✘", "fail")
            lines.append(Text.assemble((f" {mark} gate ", self._style(style)), gate.label, ("  " + gate_reading(gate), self._style(style))))
        for index, item in enumerate(phase.checklist):
            box = "[x]" if item.ticked else "[ ]"
            line = Text.assemble(
                ("▸" if index == self.cursor else " "),
                f"{box}",
                ("*" if item.required else " ", self._style("required")),
                (item.text, self._style("done") if item.ticked else ""),
                (f"  ✔ {item.by.split()[0]}" if item.by else "", self._style("done")),
            )
            if index == self.cursor and self.has_focus:
                line.stylize(self._style("cursor"))
            lines.append(line)
        if not phase.checklist:
            lines.append(Text(" no checklist items in this phase", style=self._style("done")))
        return self._window(lines, 1 + len(phase.gates) + self.cursor)

    def _window(self, lines: list[Text], focus_line: int) -> Text:
        """Keep the heading and the selected item visible when the box is short (80×24)."""
        height = self.size.height or len(lines)
        if len(lines) > height > 1:
            start = max(1, min(focus_line - height + 2, len(lines) - height + 1))
            lines = [lines[0], *lines[start:start + height - 1]]
        for line in lines:
            line.no_wrap = True
            line.overflow = "ellipsis"
        return Text("\n").join(lines)
