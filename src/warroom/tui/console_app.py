"""What the palette and the screens ask of the console app, as a type: the app imports them,
so they cannot import it back; they check the app they are given against this instead."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from warroom.core.snapshot import Snapshot
from warroom.tui.keymap import ConsoleAction


@runtime_checkable
class ConsoleApp(Protocol):
    snapshot: Snapshot | None  # the latest picture of the rollout
    now: float  # the engine's clock as the screen moves it

    def key_for(self, binding_id: str, *, first: bool = False) -> str: ...

    def run_console_action(self, action: ConsoleAction) -> None: ...
