"""Every screen and dialog over the console keeps the live banner on top: the worst condition,
a countdown, a rollback going by are never out of sight behind `?` or a step dialog."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from textual.app import ComposeResult
from textual.containers import Container
from textual.screen import ModalScreen, Screen

from warroom.tui.widgets.banner import Banner

T = TypeVar("T")
LIVE = ("snapshot", "now", "rollback_requested", "engine_alive")  # the app's reactives the banner shows


def follow_the_app(screen: Screen, then: Callable[[], Any] = lambda: None) -> None:
    """Keep `screen`'s banner live with the app's snapshot, clock and liveness (and call `then`)."""
    banner = screen.query_one(Banner)

    def follow(name: str) -> Callable[[Any], None]:
        def update(value: Any) -> None:
            setattr(banner, name, value)
            then()

        return update

    for name in LIVE:
        screen.watch(screen.app, name, follow(name))


class UnderBanner(ModalScreen[T]):
    """A dialog placed under the live banner, in the room left below it (`#room`, which centres
    it); subclasses yield their box from `dialog()`."""

    DEFAULT_CSS = """
    UnderBanner { layout: vertical; overflow: hidden; align: left top; }
    UnderBanner > #room { height: 1fr; align: center middle; overflow: hidden; }
    """

    def compose(self) -> ComposeResult:
        yield Banner()
        with Container(id="room"):
            yield from self.dialog()

    def dialog(self) -> ComposeResult:
        raise NotImplementedError

    def on_mount(self) -> None:
        follow_the_app(self)
