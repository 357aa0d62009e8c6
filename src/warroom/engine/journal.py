"""The engine's side of the write-ahead journal: entries and state changes, one transaction each.

A state change is computed from the state as it is inside the store's transaction
(`transition`), so it is judged against what is true now, never against an older copy.
Every entry written is handed to the listeners (notifications, a headless printer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..clock import Clock
from ..identity import AUTOMATIC, Actor
from ..snapshot import JournalEntry
from ..store import Store
from .state import RolloutState

Entry = tuple[str, str, Actor, dict]  # (kind, message, actor, data) of a journal entry to commit
Change = Callable[[RolloutState], tuple[RolloutState | None, list[Entry]]]


@dataclass(frozen=True)
class ActionWrite:
    """What a commit does to a write-ahead action row."""

    id: str
    new: tuple[str, dict] | None = None  # (kind, intent): the intent of a new action
    status: str | None = None  # done | failed | abandoned: its outcome
    progress: dict | None = None  # how far it got (a resumed rollback skips what is done)


class EngineJournal:
    def __init__(self, store: Store, clock: Clock, holder: str,
                 owner_claim: Callable[[str | None], tuple[str, float] | None]):
        self.store = store
        self.clock = clock
        self.holder = holder  # which engine's automation decided: user@host pid N
        self.owner_claim = owner_claim
        self.state = RolloutState()
        self.version = 0
        self.listeners: list[Callable[[JournalEntry], None]] = []

    def reload(self) -> RolloutState:
        """The state as the store has it now (read again only when another process changed it)."""
        if self.store.state_version() != self.version or not self.version:
            self.version, body = self.store.load_state()
            self.state = RolloutState.from_json(body)
        return self.state

    def transition(self, change: Change, action: ActionWrite | None = None, *, expected_version: int | None = None) -> RolloutState:
        """Commit a state change computed from the current state, with its entries and action row.

        `change` returns the next state (None: unchanged) and the entries; state.Refused
        from it commits nothing and propagates. With `expected_version`, StaleState when
        another process changed the state since it was read.
        """
        def rows(current: dict[str, Any]) -> tuple[dict[str, Any] | None, list]:
            state, entries = change(RolloutState.from_json(current))
            return (state.to_json() if state is not None else None), self._rows(entries)

        written, version, body = self.store.transition(self.clock.now(), rows, owner=self.owner_claim(action.id if action else None),
                                                       expected_version=expected_version, **self._action_args(action))
        if version is not None:
            self.version, self.state = version, RolloutState.from_json(body)
        self._tell(written)
        return self.state

    def write(self, entries: list[Entry], action: ActionWrite | None = None) -> list[JournalEntry]:
        """Journal entries (and an action's progress or outcome) without a state change."""
        written, _ = self.store.commit(self.clock.now(), self._rows(entries), None,
                                       owner=self.owner_claim(action.id if action else None), **self._action_args(action))
        self._tell(written)
        return written

    def entry(self, kind: str, message: str, actor: Actor = AUTOMATIC, data: dict | None = None, action_id: str | None = None) -> None:
        self.write([(kind, message, actor, data or {})], ActionWrite(action_id) if action_id else None)

    @staticmethod
    def _action_args(action: ActionWrite | None) -> dict[str, Any]:
        if action is None:
            return {}
        return {"action_id": action.id, "new_action": action.new, "action_status": action.status, "action_progress": action.progress}

    def _rows(self, entries: list[Entry]) -> list[tuple[str, str, str, dict]]:
        rows = []
        for kind, message, actor, data in entries:
            who = actor.to_json()
            if actor.automatic:
                who["driver"] = self.holder
            rows.append((str(kind), message, actor.label(), {**data, "actor": who}))
        return rows

    def _tell(self, written: list[JournalEntry]) -> None:
        for entry in written:
            for listener in self.listeners:
                listener(entry)
