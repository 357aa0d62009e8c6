"""What the console shows and what its parts share: the reactive state the widgets bind to, and the
attributes the console's parts (acting.py) use, typed once for them.

The base of WarroomApp (app.py), which sets them.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.app import App
from textual.reactive import reactive

from warroom.client import EngineClient
from warroom.core.identity import Actor
from warroom.core.snapshot import Snapshot
from warroom.tui.sending import Sending


class ConsoleState(App[int]):
    # repaint=False: the bound widgets repaint what changed; an App repaint redraws the whole screen.
    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True, repaint=False)
    # The engine's time now, moved every second between snapshots (see clock.py).
    now: reactive[float] = reactive(0.0, repaint=False)
    rollback_requested: reactive[bool] = reactive(False, repaint=False)
    # Whether an engine enforces the guardrails: a fresh heartbeat in the store (client.py).
    engine_alive: reactive[bool] = reactive(True, repaint=False)
    retry_key: reactive[str] = reactive("r", repaint=False)

    client: EngineClient
    actor: Actor
    sending: Sending
    # Given the rollback it queued (the engine proves its sender); None: this console cannot start one (no plan at hand).
    start_engine: Callable[[int | None], str] | None
    plan_file: str
    _asked: dict[str, bool]  # checklist items toggled, as asked, until a snapshot shows it
