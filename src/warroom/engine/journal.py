"""The engine's side of the write-ahead journal: decisions applied at once, committed in order on the store thread.

While it holds the lease, this engine is the only writer of the rollout's state (every
commit is fenced by its epoch), so the state in memory is the state: a change is judged
against it and applied at once, and its commit — the entries, the new state and the
action row, one fenced transaction — is handed to the store thread (store/thread.py),
which commits in the order the decisions were made. The event loop never waits for the
store: guardrails are judged at the poll cadence however slowly the store answers. What
must be durable before it happens waits for it: a flag write waits for the lease renewal
that follows its intent on the same thread (lease.py), and `settled()` waits for all.

Every entry committed is handed to the listeners (notifications, the headless printer)
once it is in the store, with its sequence number. The journal's tail that snapshots show
has each entry from the moment it is decided (numbered after the newest one known, then
renumbered as the store numbered it), so a snapshot never lags a slow store. A commit
that finds another engine's epoch tells `on_fenced`: this engine stops acting.

Samples are expendable, decisions are not: when the store cannot be written (a full
disk, a database away), the decision that failed and every later one are held, in order,
with the state they led to, until the store takes them again (`flush`, every tick);
meanwhile the engine keeps guarding and says loudly that the journal cannot be written.
A commit that failed may have landed all the same (the connection cut after the server
committed): `flush` tells the store the newest entry known written, and what is already
there after it is not written twice.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from warroom.core.clock import Clock
from warroom.core.identity import AUTOMATIC, Actor
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import JournalEntry
from warroom.engine.state import ActionRef, RolloutState
from warroom.store import rows as stored
from warroom.store.base import ActionWrite, Fence, Fenced, Held, Row, StaleState, Store, StoreError
from warroom.store.thread import StoreThread

log = logging.getLogger(__name__)

Entry = tuple[str, str, Actor, dict[str, Any]]  # (kind, message, actor, data) of a journal entry to commit
Change = Callable[[RolloutState], tuple[RolloutState | None, list[Entry]]]
TAIL = 200  # the newest committed entries kept in memory (a snapshot shows 60)


class Stored(Protocol):
    """A value the store keeps as JSON (an action's intent)."""

    def to_json(self) -> dict[str, Any]: ...


Intent = TypeVar("Intent", bound=Stored)

# The command being run on this task (engine/commands.py sets it): an action it starts is recorded on it.
COMMAND: contextvars.ContextVar[int | None] = contextvars.ContextVar("warroom_command", default=None)


@dataclass
class _Held:
    """Decisions the store could not take yet, oldest first."""

    since: float
    reason: str
    rows: list[Held] = dataclasses.field(default_factory=list)


class _Writer:
    """On the store thread only: commits in order; once one cannot be written, holds it and every
    later one (never a later one before an earlier), until `flush` writes them all at once."""

    def __init__(self, unwritable: Callable[[str], Row]) -> None:
        self.held: _Held | None = None
        self.unwritable = unwritable  # the entry that says why the journal cannot be written
        # The newest entry known to be in the store: a commit that failed may yet have landed (the connection cut
        # after the server committed), and `flush` writes again only what is not there after it.
        self.written = 0

    def commit(self, store: Store, fence: Fence, ts: float, rows: list[Row], action: ActionWrite | None,
               state: dict[str, Any] | None) -> tuple[list[JournalEntry], bool]:
        """(the entries as written or held, whether they are held)."""
        kept = []
        if self.held is None:
            try:
                return self._known(store.commit(fence, ts, rows, state=state, action=action).entries), False
            except Fenced:
                raise
            except StoreError as exc:
                log.critical("THE JOURNAL CANNOT BE WRITTEN: %s. Guarding from memory: guardrails, rollbacks and flag "
                             "writes go on; decisions are kept until the state database can be written again", exc)
                self.held = _Held(time.time(), str(exc))
                kept.append(self._keep(ts, self.unwritable(str(exc)), None))
        for i, row in enumerate(rows):  # each entry of the batch names its action, as a commit writes them
            kept.append(self._keep(ts, row, action if i == 0 or action is None else ActionWrite(action.id)))
        if not rows and action is not None:
            self.held.rows.append((ts, None, action))  # progress or outcome alone
        return kept, True

    def _keep(self, ts: float, row: Row, action: ActionWrite | None) -> JournalEntry:
        assert self.held is not None
        self.held.rows.append((ts, row, action))
        return JournalEntry(0, ts, row[0], row[1], row[2], action.id if action else None, row[3])

    def flush(self, store: Store, fence: Fence, ts: float, gap: Callable[[_Held], Row], state: dict[str, Any]) -> list[JournalEntry] | None:
        """Write what was held, in order, then the state as the engine holds it; the entries written, None if still held."""
        if self.held is None:
            return []
        try:
            done = store.commit_many(fence, [*self.held.rows, (ts, gap(self.held), None)], state, after=self.written)
        except Fenced:
            raise
        except StoreError:
            return None
        log.warning("the journal is written again: %d decisions held in memory are in it now", len(self.held.rows))
        self.held = None
        return self._known(done.entries)

    def _known(self, entries: list[JournalEntry]) -> list[JournalEntry]:
        self.written = max([self.written, *(e.seq for e in entries)])
        return entries


class EngineJournal:
    def __init__(self, thread: StoreThread, clock: Clock, holder: str, fence: Callable[[], Fence],
                 on_fenced: Callable[[Fenced], None]):
        self.thread = thread
        self.clock = clock
        self.holder = holder  # which engine decided: user@host pid N
        self.fence = fence
        self.on_fenced = on_fenced
        self.state = RolloutState()
        self.version = 0  # raised by one at every change decided here (StaleState: a command judged on an older one)
        self.listeners: list[Callable[[JournalEntry], None]] = []
        self.held: str | None = None  # why the store cannot be written, while it cannot
        self._writer = _Writer(lambda reason: self._rows([(
            Kind.JOURNAL_UNWRITABLE, f"the journal cannot be written ({reason}): guarding from memory; decisions are kept until it can",
            AUTOMATIC, {"reason": reason})])[0])
        self._flushing = False
        self._tail: deque[JournalEntry] = deque(maxlen=TAIL)  # the newest entries decided, oldest first
        self._seq = 0  # the newest entry's number in the tail (as the store numbered it, or as it will)

    async def load(self) -> RolloutState:
        """The state and the journal's newest entries as the store has them (once, as the engine starts to drive)."""
        def read(store: Store) -> tuple[tuple[int, dict[str, Any]], list[JournalEntry]]:
            newest = store.tail(TAIL)
            self._writer.written = newest[0].seq if newest else 0  # on the store thread, as every commit
            return store.load_state(), newest

        (self.version, body), newest = await self.thread.call(read)
        self.state = RolloutState.from_json(body)
        self._tail.extend(reversed(newest))
        self._seq = newest[0].seq if newest else 0
        return self.state

    def reload(self) -> RolloutState:
        """The state: this engine's, as decided (it is the only writer while it holds the lease)."""
        return self.state

    def tail(self, n: int) -> tuple[JournalEntry, ...]:
        """The newest n entries decided, newest first."""
        return tuple(reversed(self._tail))[:n]

    async def settled(self) -> None:
        """Until every decision made so far is committed (or held) and its listeners told."""
        await self.thread.settled()

    def transition(self, change: Change, action: ActionWrite | None = None, *, expected_version: int | None = None) -> RolloutState:
        """Apply a state change computed from the current state, and commit it with its entries and action row.

        `change` returns the next state (None: unchanged) and the entries; state.Refused
        from it commits nothing and propagates. With `expected_version`, StaleState when
        the state changed since it was read.
        """
        if expected_version is not None and expected_version != self.version:
            raise StaleState()
        state, entries = change(self.state)
        if state is not None:
            self.state = state
            self.version += 1
        self._commit(self._rows(entries), self._with_command(action), state)
        return self.state

    def begin(self, ref: ActionRef, begin: Callable[[RolloutState], tuple[RolloutState, list[Entry], Intent]]) -> Intent:
        """Apply a new write-ahead action whose intent is worked out from the state as this engine
        holds it (where a rollback rolls back from), and commit it; that intent. Refused from `begin`
        commits nothing and propagates."""
        after, entries, intent = begin(self.state)
        self.transition(lambda _: (after, entries), ActionWrite(ref.id, new=(ref.kind, intent.to_json())))
        return intent

    def write(self, entries: list[Entry], action: ActionWrite | None = None) -> None:
        """Journal entries (and an action's progress or outcome) without a state change."""
        self._commit(self._rows(entries), self._with_command(action), None)

    def entry(self, kind: str, message: str, actor: Actor = AUTOMATIC, data: dict[str, Any] | None = None,
              action_id: str | None = None) -> None:
        self.write([(kind, message, actor, data or {})], ActionWrite(action_id) if action_id else None)

    def flush(self) -> None:
        """While the store cannot be written: try again to write what was held (one try at a time)."""
        if self.held is None or self._flushing:
            return
        self._flushing = True
        fence, ts, state = self.fence(), self.clock.now(), self.state.to_json()

        def gap(held: _Held) -> Row:
            entries = sum(1 for _, r, _ in held.rows if r)
            return self._rows([(Kind.JOURNAL_RECOVERED, f"the journal is written again: {entries} entries kept in memory since "
                                f"{time.strftime('%H:%M:%S', time.gmtime(held.since))} UTC are in it now", AUTOMATIC,
                                {"since": held.since})])[0]

        def done(future: Future[list[JournalEntry] | None]) -> None:
            self._flushing = False
            written = self._outcome(future)
            if written is not None:
                self.held = None
                self._tell([e for e in written if e.kind == Kind.JOURNAL_RECOVERED])

        self.thread.send(lambda store: self._writer.flush(store, fence, ts, gap, state), done)

    # ------------------------------------------------------------ plumbing

    def _commit(self, rows: list[Row], action: ActionWrite | None, state: RolloutState | None) -> None:
        if not rows and action is None and state is None:
            return
        fence, ts = self.fence(), self.clock.now()
        body = state.to_json() if state is not None else None
        decided = self._decided(ts, rows, action)

        def done(future: Future[tuple[list[JournalEntry], bool]]) -> None:
            found = self._outcome(future)
            if found is None:
                return
            entries, held = found
            if held:
                self.held = self._writer.held.reason if self._writer.held else "the store cannot be written"
            else:
                self._renumber(decided, entries)
            self._tell(entries)

        self.thread.send(lambda store: self._writer.commit(store, fence, ts, rows, action, body), done)

    def _decided(self, ts: float, rows: list[Row], action: ActionWrite | None) -> list[JournalEntry]:
        """The entries into the tail at once, as the store will keep them (redacted), numbered after the newest."""
        decided = []
        for row in rows:
            self._seq += 1
            kind, message, actor, data = stored.journal_text(row)
            decided.append(JournalEntry(self._seq, ts, kind, message, actor, action.id if action else None, json.loads(data)))
        self._tail.extend(decided)
        return decided

    def _renumber(self, decided: list[JournalEntry], written: list[JournalEntry]) -> None:
        """The decided entries as the store numbered them (another rollout's entries share PostgreSQL's numbers)."""
        for old, new in zip(decided, written, strict=False):
            for i, entry in enumerate(self._tail):
                if entry is old:
                    self._tail[i] = new
                    break
            self._seq = max(self._seq, new.seq)

    def _outcome(self, future: Future[Any]) -> Any:
        """The answer of a commit handed to the store thread; None when this engine was fenced."""
        try:
            return future.result()
        except Fenced as exc:
            self.on_fenced(exc)
            return None

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
