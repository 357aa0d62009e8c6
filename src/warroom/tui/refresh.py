"""Repaint only what changed. At 1 Hz over SSH every repainted cell costs bytes and CPU,
and a war-room console is left open for hours on a shared bastion."""

from __future__ import annotations

from typing import Any, TypeVar

from rich.cells import cell_len
from rich.style import Style
from textual.widget import Widget
from textual.widgets import Static

W = TypeVar("W", bound=Widget)


def set_text(widget: Static, content: Any) -> None:
    """Update a Static only when its text changed, and re-lay out only when its width did.

    Static.update defaults to a layout pass, which repaints the whole container (the
    panes grid, the banner row) for a value that went from 0.043% to 0.041%.
    """
    old = widget.content
    if old == content:
        return
    same_width = isinstance(old, str) and isinstance(content, str) and cell_len(old) == cell_len(content)
    widget.update(content, layout=not same_width)


def changed(widget: Widget, key: Any, aspect: str = "shown") -> bool:
    """True (and remembered) when what `widget` shows, summed up as `key`, differs from last
    time; `aspect` keeps several such memories apart (what it shows, how many lines)."""
    slot = f"_{aspect}_key"
    if getattr(widget, slot, object()) == key:
        return False
    setattr(widget, slot, key)
    return True


class CachedComponentStyles(Widget):
    """Component styles looked up once per style change rather than on every render: a
    lookup costs about as much as drawing a chart, and eight charts redraw every second."""

    def component_style(self, name: str) -> Style:
        cache: dict[str, Style] = self.__dict__.setdefault("_component_styles_cache", {})
        if name not in cache:
            cache[name] = self.get_component_rich_style(name)
        return cache[name]

    def notify_style_update(self) -> None:
        self.__dict__.pop("_component_styles_cache", None)  # a theme, a class or the CSS changed
        super().notify_style_update()


def part(widget: Widget, selector: str, kind: type[W]) -> W:
    """A composed child of type `kind`, found once: query_one matches selectors on every call, and eight
    panes and the banner look their parts up every second. Only for children never replaced."""
    parts: dict[str, Widget] = widget.__dict__.setdefault("_parts", {})
    if selector not in parts:
        parts[selector] = widget.query_one(selector, kind)
    found = parts[selector]
    assert isinstance(found, kind)
    return found
