"""Each flag: what warroom set (desired) next to what the provider says (observed).

A flag's name, desired and observed state are never cut: desired against observed is
the question during a flag-service outage. A read error or drift note goes after them,
or on a line of its own under them when the row has no room.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive

from warroom.core.snapshot import FlagView, Snapshot
from warroom.tui.parts import Parts
from warroom.tui.refresh import changed

GAP = 2
HEADERS = ("flag", "desired", "observed")


def cells(flag: FlagView) -> tuple[str, str, str, str]:
    """(name, desired, observed, note) as shown."""
    desired = flag.desired.label() if flag.desired else "—"
    if flag.error:
        return flag.name, desired, "? unreadable", flag.error
    observed = flag.observed.label() if flag.observed else "absent"
    if flag.desired and flag.observed and not flag.drift and not flag.observed.matches(flag.desired):
        return flag.name, desired, observed, "≠ desired: not confirmed yet"  # a write in flight, or retrying
    return flag.name, desired, observed, ""


def column_widths(rows: list[tuple[str, str, str, str]]) -> list[int]:
    return [max(cell_len(r[i]) for r in [HEADERS + ("",), *rows]) for i in range(3)]


class FlagsTable(Parts):
    PARTS = {"header": "$text-muted bold", "drift": "$error bold reverse", "error": "$warning"}
    DEFAULT_CSS = """
    FlagsTable { width: auto; height: auto; padding: 0 1; background: $surface; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        if snap is not None and changed(self, (snap.flags, snap.flags_age())):
            self.refresh(layout=True)

    def _rows(self) -> list[tuple[str, str, str, str]]:
        return [cells(f) for f in self.snapshot.flags] if self.snapshot else []

    def get_content_width(self, container: Size, viewport: Size) -> int:
        rows = self._rows()
        if not rows:
            return 0
        base = sum(column_widths(rows)) + 2 * GAP
        notes = max((cell_len(r[3]) + GAP for r in rows if r[3]), default=0)
        drift = 7 if self.snapshot and any(f.drift for f in self.snapshot.flags) else 0
        # Whole columns always; a note only as far as half the screen (it wraps below otherwise).
        return max(base + drift, min(base + max(notes, drift), container.width // 2))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._render_lines(width))

    def _render_lines(self, width: int) -> list[Text]:
        snap = self.snapshot
        if snap is None:
            return []
        rows = self._rows()
        widths = column_widths(rows)
        base = sum(widths) + 2 * GAP
        header = self.part("header")
        lines = [Text("  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True)).rstrip(), style=header)]
        lines[0].append(f"  {age}" if (age := snap.flags_age()) else "", self.part("error"))  # a hanging flag service: old readings
        for flag, (name, desired, observed, note) in zip(snap.flags, rows, strict=True):
            line = Text(f"{name.ljust(widths[0])}  {desired.ljust(widths[1])}  ")
            line.append(observed.ljust(widths[2]) if note or flag.drift else observed,
                        self.part("error") if flag.error else "")
            if flag.drift:
                line.append("  ")
                line.append("DRIFT", self.part("drift"))
            lines.append(line)
            if note:
                style = self.part("error")
                if base + GAP + cell_len(note) <= width and not flag.drift:
                    line.append(" " * GAP + note, style)
                else:
                    lines.append(Text("  " + note, style=style, no_wrap=True, overflow="ellipsis"))
        for line in lines:
            line.no_wrap, line.overflow = True, "ellipsis"
        return lines

    def render(self) -> Text:
        return Text("\n").join(self._render_lines(self.content_region.width))
