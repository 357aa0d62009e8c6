"""Each flag: what warroom set (desired) next to what the provider says (observed)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ...snapshot import Snapshot
from ..refresh import changed


class FlagsTable(Widget):
    COMPONENT_CLASSES = {"flags--header", "flags--drift", "flags--error"}
    DEFAULT_CSS = """
    FlagsTable { height: auto; max-height: 100%; padding: 0 1; background: $surface; }
    FlagsTable > .flags--header { color: $text-muted; text-style: bold; }
    FlagsTable > .flags--drift { color: $error; text-style: bold reverse; }
    FlagsTable > .flags--error { color: $warning; }
    """

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        if snap is not None and changed(self, snap.flags):
            self.refresh(layout=True)

    def render(self) -> Table | Text:
        snap = self.snapshot
        if snap is None:
            return Text("")
        drift = self.get_component_rich_style("flags--drift")
        table = Table(box=None, padding=(0, 2, 0, 0), expand=False, show_edge=False,
                      header_style=self.get_component_rich_style("flags--header"))
        table.add_column("flag", no_wrap=True, overflow="ellipsis")
        table.add_column("desired", no_wrap=True)
        table.add_column("observed", no_wrap=True, overflow="ellipsis")
        for flag in snap.flags:
            desired = flag.desired.label() if flag.desired else "—"
            if flag.error:
                observed = Text(f"? {flag.error}", style=self.get_component_rich_style("flags--error"))
            else:
                observed = Text(flag.observed.label() if flag.observed else "absent")
            if flag.drift:
                observed.append(" DRIFT", style=drift)
            table.add_row(flag.name, desired, observed)
        return table
