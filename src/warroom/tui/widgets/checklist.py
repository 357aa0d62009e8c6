"""The current phase: its gates (value against threshold) and its checklist, tickable.

The heading and the gates always show; when the box is shorter than the checklist, the
items scroll around the selected one, with how many more are above and below.
"""

from __future__ import annotations

from rich.text import Text
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive

from warroom.core.snapshot import ChecklistView, GateView, Snapshot
from warroom.core.units import format_value
from warroom.tui.keymap import bindings
from warroom.tui.parts import Parts
from warroom.tui.refresh import changed


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


def required_count(items: tuple[ChecklistView, ...]) -> str:
    required = [i for i in items if i.required]
    return f"required {sum(i.ticked for i in required)}/{len(required)}" if required else ""


def item_window(count: int, cursor: int, room: int) -> tuple[int, int]:
    """Items [start, end) to show in `room` lines, the cursor among them; a line above or
    below the window is taken by a "more" note whenever items are hidden there."""
    if count <= room:
        return 0, count
    room = max(room, 3)  # a note above, the cursor, a note below
    start = max(0, min(cursor - (room - 2) // 2, count - room + 1))
    while True:
        end = min(count, start + room - (start > 0))
        if end < count:
            end -= 1  # the line for "more below"
        if cursor < end or end == count:
            return start, end
        start += 1


class Checklist(Parts, can_focus=True):
    BINDINGS = bindings("checklist")
    PARTS = {
        "heading": "$primary bold", "pass": "$success", "fail": "$error bold", "nodata": "$status-stale italic",
        "cursor-focus": "bold reverse", "done": "$text-muted", "required": "$warning bold",
        "more": "$text-muted italic",
    }
    DEFAULT_CSS = """
    Checklist { height: auto; padding: 0 1; background: $surface; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    class Toggle(Message):
        """The user asked to tick (or untick) a checklist item of the current phase."""

        def __init__(self, item: ChecklistView) -> None:
            super().__init__()
            self.item = item

    class Grown(Message):
        """The checklist needs another number of lines (a gate's reading wrapped): its box follows."""

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
            # A new layout only when the number of lines changed (the box follows): a gate's
            # value changing each poll is a repaint of this widget, not of the screen.
            lines = (len(self._pinned(self.content_region.width or 200)), len(self.items))
            relayout = changed(self, lines, "lines")
            self.refresh(layout=relayout)
            if relayout:
                self.post_message(self.Grown())

    def action_cursor(self, delta: int) -> None:
        self.cursor += delta

    def action_tick_item(self) -> None:
        if self.selected is not None:
            self.post_message(self.Toggle(self.selected))
        else:
            self.notify("no checklist item to tick in this phase", severity="warning")

    def _style(self, name: str):
        return self.part(name)

    def _pinned(self, width: int) -> list[Text]:
        """The heading and the gates: never scrolled away, a gate's reading never cut (it wraps
        under its name when the line has no room)."""
        snap = self.snapshot
        if snap is None:
            return [Text("waiting for the engine…")]
        if snap.phase is None:
            lines = [Text(f"Not started: {snap.phase_count} phases", style=self._style("heading"))]
            if snap.next_change:
                lines.append(Text(f"next: {snap.next_change}"))
            return lines
        phase = snap.phase
        count = required_count(phase.checklist)
        lines = [Text.assemble((f"Phase {phase.index}/{snap.phase_count} {phase.name}", self._style("heading")),
                               (f"  * {count}" if count else "", self._style("required")))]
        gates = [self._gate_line(gate, compact=False) for gate in phase.gates]
        if any(line.cell_len > width for line in gates):
            # Narrow: the readings matter more than the word "gate" (the ✔/✘/? says it).
            gates = [self._gate_line(gate, compact=True) for gate in phase.gates]
        for gate, line in zip(phase.gates, gates, strict=True):
            lines += self._gate_lines(gate) if line.cell_len > width else [line]
        if not phase.checklist:
            lines.append(Text(" no checklist items in this phase", style=self._style("done")))
        return lines

    def _mark(self, gate: GateView) -> tuple[str, str]:
        if gate.passed is None:
            return "?", "nodata"
        return ("✔", "pass") if gate.passed else ("✘", "fail")

    def _gate_line(self, gate: GateView, compact: bool) -> Text:
        mark, style = self._mark(gate)
        if compact:
            return Text.assemble((f" {mark} ", self._style(style)), gate.label, (": " + gate_reading(gate), self._style(style)))
        return Text.assemble((f" {mark} gate ", self._style(style)), gate.label, ("  " + gate_reading(gate), self._style(style)))

    def _gate_lines(self, gate: GateView) -> list[Text]:
        """A gate on two lines: its name, then its reading (`99.78% > 99.00%`) whole under it."""
        mark, style = self._mark(gate)
        return [Text.assemble((f" {mark} ", self._style(style)), gate.label),
                Text("   " + gate_reading(gate), style=self._style(style))]

    def _item_lines(self, width: int) -> list[Text]:
        lines = []
        for index, item in enumerate(self.items):
            # Who ticked it stays whole at the end of the line: the item's text gives way.
            by = f"  ✔ {item.by.split()[0]}" if item.by else ""
            text = Text(item.text, style=self._style("done") if item.ticked else "")
            text.truncate(max(1, width - 5 - len(by)), overflow="ellipsis")
            line = Text.assemble(
                ("▸" if index == self.cursor else " "),
                "[x]" if item.ticked else "[ ]",
                ("*" if item.required else " ", self._style("required")),
                text,
                (by, self._style("done")),
            )
            if index == self.cursor and self.has_focus:
                line.stylize(self._style("cursor-focus"))
            lines.append(line)
        return lines

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._pinned(width)) + len(self.items)

    def render(self) -> Text:
        width = self.content_region.width or 200
        pinned, items = self._pinned(width), self._item_lines(width)
        room = (self.content_region.height or len(pinned) + len(items)) - len(pinned)
        if len(items) > room > 0:
            start, end = item_window(len(items), self.cursor, room)
            window = items[start:end]
            if start > 0:
                window.insert(0, Text(f"  ▲ {start} more above", style=self._style("more")))
            if end < len(items):
                window.append(Text(f"  ▼ {len(items) - end} more below", style=self._style("more")))
            items = window
        lines = pinned + items
        for line in lines:
            line.no_wrap = True
            line.overflow = "ellipsis"
        return Text("\n").join(lines)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
