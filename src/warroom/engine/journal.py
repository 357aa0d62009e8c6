"""The engine's side of the write-ahead journal: entries and state changes, one fenced transaction each.

A state change is computed from the state as it is inside the store's transaction, so it
is judged against what is true now, never against an older copy. Every commit carries
the engine's lease epoch (store.Fenced when another engine took over). Every entry
written is handed to the listeners (notifications, the headless printer).

Samples are expendable, decisions are not: when the store cannot be written (a full
disk), a decision is applied to the state in memory, told to the listeners, and held
until the store takes it again (`flush`, every tick); meanwhile the engine keeps
guarding and says loudly that the journal cannot be written.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from warroom.core.clock import Clock
from warroom.core.identity import AUTOMATIC, Actor
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import JournalEntry
from warroom.engine.state import ActionRef, RolloutState
from warroom.store.base import ActionWrite, Fence, Row, Store, StoreUnwritable

log = logging.getLogger(__name__)

Entry = tuple[str, str, Actor, dict[str, Any]]  # (kind, message, actor, data) of a journal entry to commit
Change = Callable[[RolloutState], tuple[RolloutState | None, list[Entry]]]


class Stored(Protocol):
    """A value the store keeps as JSON (an action's intent)."""

    def to_json(self) -> dict[str, Any]: ...


Intent = TypeVar("Intent", bound=Stored)

# The command being run on this task (engine/commands.py sets it): an action it starts is recorded on it.
COMMAND: contextvars.ContextVar[int | None] = contextvars.ContextVar("warroom_command", default=None)


@dataclass
class _Held:
    """Decisions the store could not take yet, oldest first, with the state they led to."""

    since: float
    reason: str
    rows: list[tuple[float, Row | None, ActionWrite | None]] = dataclasses.field(default_factory=list)  # None: an action's progress alone


class EngineJournal:
    def __init__(self, store: Store, clock: Clock, holder: str, fence: Callable[[], Fence]):
        self.store = store
        self.clock = clock
        self.holder = holder  # which engine decided: user@host pid N
        self.fence = fence
        self.state = RolloutState()
        self.version = 0
        self.listeners: list[Callable[[JournalEntry], None]] = []
        self.held: _Held | None = None  # while the store cannot be written
        self._tail: tuple[JournalEntry, ...] = ()  # the newest entries as last read

    def reload(self) -> RolloutState:
        """The state as the store has it (read again only when it changed), or as held in memory."""
        try:
            if self.held is None and (self.store.state_version() != self.version or not self.version):
                self.version, body = self.store.load_state()
                self.state = RolloutState.from_json(body)
        except StoreUnwritable:
            pass  # a network store away: ours is the state as last read or committed (a write meanwhile is held)
        return self.state

    def tail(self, n: int) -> tuple[JournalEntry, ...]:
        """The newest n entries, newest first; while the store cannot be reached, as last read."""
        with contextlib.suppress(StoreUnwritable):
            self._tail = tuple(self.store.tail(n))
        return self._tail

    def transition(self, change: Change, action: ActionWrite | None = None, *, expected_version: int | None = None) -> RolloutState:
        """Commit a state change computed from the current state, with its entries and action row.

        `change` returns the next state (None: unchanged) and the entries; state.Refused
        from it commits nothing and propagates. With `expected_version`, StaleState when
        the state changed since it was read.
        """
        action = self._with_command(action)
        if self.held is None:
            def rows(current: dict[str, Any]) -> tuple[dict[str, Any] | None, list[Row]]:
                state, entries = change(RolloutState.from_json(current))
                return (state.to_json() if state is not None else None), self._rows(entries)

            try:
                done = self.store.commit(self.fence(), self.clock.now(), change=rows, action=action, expected_version=expected_version)
            except StoreUnwritable as exc:
                self._hold(str(exc))
            else:
                if done.version is not None:
                    self.version, self.state = done.version, RolloutState.from_json(done.state)
                self._tell(done.entries)
                return self.state
        state, entries = change(self.state)  # Refused propagates: nothing is held
        if state is not None:
            self.state = state
        self._keep(self._rows(entries), action)
        return self.state

    def begin(self, ref: ActionRef, begin: Callable[[RolloutState], tuple[RolloutState, list[Entry], Intent]]) -> Intent:
        """Commit a new write-ahead action whose intent is worked out inside the transaction, from the
        state as it is there (where a rollback rolls back from); that intent. Refused from `begin`
        commits nothing and propagates."""
        row: dict[str, Any] = {}  # the action row's intent: the store writes the row after the change, in its transaction
        made: list[Intent] = []

        def change(current: RolloutState) -> tuple[RolloutState, list[Entry]]:
            after, entries, intent = begin(current)
            made.append(intent)
            row.clear()
            row.update(intent.to_json())
            return after, entries

        self.transition(change, ActionWrite(ref.id, new=(ref.kind, row)))
        return made[-1]

    def write(self, entries: list[Entry], action: ActionWrite | None = None) -> list[JournalEntry]:
        """Journal entries (and an action's progress or outcome) without a state change."""
        action = self._with_command(action)
        if self.held is None:
            try:
                done = self.store.commit(self.fence(), self.clock.now(), self._rows(entries), action=action)
            except StoreUnwritable as exc:
                self._hold(str(exc))
            else:
                self._tell(done.entries)
                return done.entries
        return self._keep(self._rows(entries), action)

    def entry(self, kind: str, message: str, actor: Actor = AUTOMATIC, data: dict[str, Any] | None = None,
              action_id: str | None = None) -> None:
        self.write([(kind, message, actor, data or {})], ActionWrite(action_id) if action_id else None)

    # ------------------------------------------------------------ a store that cannot be written

    def _hold(self, reason: str) -> None:
        self.held = _Held(time.time(), reason)
        log.critical("THE JOURNAL CANNOT BE WRITTEN: %s. Guarding from memory: guardrails, rollbacks and flag "
                     "writes go on; decisions are kept until the state database can be written again", reason)
        self._keep(self._rows([(Kind.JOURNAL_UNWRITABLE, f"the journal cannot be written ({reason}): guarding from memory; "
                                "decisions are kept until it can", AUTOMATIC, {"reason": reason})]), None)

    def _keep(self, rows: list[Row], action: ActionWrite | None) -> list[JournalEntry]:
        assert self.held is not None
        ts = self.clock.now()
        kept = []
        for i, row in enumerate(rows):
            self.held.rows.append((ts, row, action if i == 0 else None))
            kept.append(JournalEntry(0, ts, row[0], row[1], row[2], action.id if action else None, row[3]))
        if not rows and action is not None:
            self.held.rows.append((ts, None, action))  # progress or outcome alone
        self._tell(kept)
        return kept

    def flush(self) -> bool:
        """Write what was held, in order, with the state as it now is; True when nothing is held any more."""
        if self.held is None:
            return True
        held = self.held
        gap = (Kind.JOURNAL_RECOVERED, f"the journal is written again: {sum(1 for _, r, _ in held.rows if r)} entries kept in memory "
               f"since {time.strftime('%H:%M:%S', time.gmtime(held.since))} UTC are in it now", AUTOMATIC, {"since": held.since})
        try:
            done = self.store.commit_many(self.fence(), [*held.rows, (self.clock.now(), self._rows([gap])[0], None)], self.state.to_json())
        except StoreUnwritable:
            return False
        self.held = None
        self.version = done.version or self.version
        log.warning("the journal is written again: %d decisions held in memory are in it now", len(held.rows))
        self._tell([e for e in done.entries if e.kind == Kind.JOURNAL_RECOVERED])
        return True

    # ------------------------------------------------------------ plumbing

    @staticmethod
    def _with_command(action: ActionWrite | None) -> ActionWrite | None:
        if action is not None and action.new is not None and action.command is None and (command := COMMAND.get()) is not None:
            return dataclasses.replace(action, command=command)
        return action

    def _rows(self, entries: list[Entry]) -> list[Row]:
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
