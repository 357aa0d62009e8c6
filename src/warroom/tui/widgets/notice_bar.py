"""Notices: one at a time, on a line of their own above the status line.

They never cover the banner, the flags or anything else, and a newer notice replaces
the one before. Routine outcomes (a ticked item) are not notices: the journal line
under the checklist says them.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.timer import Timer

from warroom.core.text import terminal_safe
from warroom.tui.parts import Parts

SEVERITIES = ("information", "warning", "error")


@dataclass(frozen=True)
class Notice:
    message: str
    title: str = ""
    severity: str = "information"


class NoticeBar(Parts):
    PARTS = {"title": "bold"}
    DEFAULT_CSS = """
    NoticeBar { display: none; height: auto; max-height: 2; padding: 0 1; background: $boost; }
    NoticeBar.-shown { display: block; }
    NoticeBar.-warning { color: $warning; }
    NoticeBar.-error { color: $error; background: $error 15%; }
    """

    notice: reactive[Notice | None] = reactive(None, layout=True)

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._timer: Timer | None = None

    def show(self, notice: Notice, timeout: float) -> None:
        if self._timer is not None:
            self._timer.stop()
        self.notice = Notice(terminal_safe(notice.message), terminal_safe(notice.title), notice.severity)
        self._timer = self.set_timer(timeout, self.clear)

    def clear(self) -> None:
        self.notice = None

    def watch_notice(self, notice: Notice | None) -> None:
        self.set_class(notice is not None, "-shown")
        for severity in SEVERITIES:
            self.set_class(notice is not None and notice.severity == severity, f"-{severity}")

    def render(self) -> Text:
        notice = self.notice
        if notice is None:
            return Text("")
        title = Text(f"{notice.title}: ", style=self.part("title")) if notice.title else Text("")
        return Text.assemble(title, notice.message, overflow="ellipsis")
