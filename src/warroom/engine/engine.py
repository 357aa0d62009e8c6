# Over 500 lines: the façade is the one place that applies — lifecycle, the tick and every command, each a few lines over its parts.
"""The rollout engine: a façade over its parts — lifecycle, the tick, and the commands.

It knows nothing of any UI. It is driven by the clock it is given; each tick polls every
query and flag concurrently (polling.py), judges guardrails (guardrails.py) and what the
plan allows (policy.py), applies what the automation decided (automation.py) through
write-ahead actions (intents.py, executor.py), and publishes an immutable Snapshot to
the store (views.py), where every console and verb reads it. Parts compute and return;
only this façade applies. Commands come in through
commands.py and run as the command methods below, with the human who asked. State
changes go through the one transition table (state.py), committed with their journal
entries (journal.py) under the engine's lease epoch (lease.py): an engine that was
taken over writes nothing more. Every store call goes through the engine's store thread
(store/thread.py): the loop polls and judges at its cadence however slowly the store answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from warroom.core.approvals import Answer
from warroom.core.clock import Clock
from warroom.core.flagstate import FlagState
from warroom.core.freeze import Freeze
from warroom.core.identity import AUTOMATIC, Actor
from warroom.core.journal_kinds import DECISIONS, Kind
from warroom.core.secrets import redact
from warroom.core.snapshot import JournalEntry, Snapshot, State
from warroom.engine import approvals, command_changes, freeze, intents, views
from warroom.engine import state as st
from warroom.engine.automation import Automation, Commit, Decision, Note, Pause, RollBack, StepUp
from warroom.engine.cohorts import QueryKey
from warroom.engine.executor import CommandError, Executor
from warroom.engine.exposure import Exposure
from warroom.engine.go_no_go import GoNoGo
from warroom.engine.guardrails import Guardrails
from warroom.engine.intents import RollbackProgress
from warroom.engine.journal import EngineJournal, Entry
from warroom.engine.lease import Lease
from warroom.engine.policy import Policy
from warroom.engine.polling import FlagReader, Poller
from warroom.engine.publishing import Publisher
from warroom.engine.recovery import Recovery
from warroom.engine.schedule import JOURNALED, Scheduler
from warroom.engine.updates import INCIDENTS, Cadence, DraftUpdate, PublishUpdate, UpdateDecision
from warroom.flags.base import FlagProvider
from warroom.outbound import update_archive
from warroom.plan.model import Plan
from warroom.sources.base import Reading, Source, SourceContext
from warroom.store.base import ActionWrite, Fenced, StaleState, Store, StoredUpdate, StoreError
from warroom.store.thread import StoreThread

__all__ = ["CommandError", "Engine"]

log = logging.getLogger(__name__)

PUBLISHING_GRACE = 10.0  # wall seconds a stopping engine lets a stakeholder update finish going out
PUBLISH_EVERY = 0.05  # wall seconds: snapshots closer than this are coalesced (virtual time ticks back to back)


def _published(task: asyncio.Task[str]) -> None:
    """A background publication that failed is logged (the draft stays, the next tick's cadence asks again)."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("the stakeholder update could not be published: %s", redact(f"{type(exc).__name__}: {exc}"))


class Engine:
    def __init__(
        self,
        plan: Plan,
        store: StoreThread,
        provider: FlagProvider,
        sources: dict[str, Source],
        clock: Clock,
        *,
        lease: Lease,
        archive: Path,
        dry_run_steps: bool = False,
        backfill: bool = True,
    ):
        self.plan = plan
        self.store_thread = store
        self.sources = sources
        self.clock = clock
        self.lease = lease
        self.holder = lease.holder.label()  # user@host pid N: which engine decided, in the journal's data
        self.name = f"{lease.holder.user}@{lease.holder.host}"  # in messages: the pid is in the data
        self.want_backfill = backfill
        self.started_at = clock.now()
        self.tick_count = 0
        self.fenced: Fenced | None = None  # set once another engine took the lease over: act no more

        self.journal = EngineJournal(store, clock, self.holder, lambda: self.lease.fence, self.on_fenced)
        self.poller = Poller(plan, sources, clock)
        self.guardrails = Guardrails(plan, self.poller)
        self.flags = FlagReader(provider, plan.flag_names(), clock)
        self.exposure = Exposure(plan, plan.exposure) if plan.exposure else None
        if self.exposure is not None:
            self.poller.want(*self.exposure.keys.values())
        self.policy = Policy(plan, self.poller, self.flags, self.exposure)
        self.executor = Executor(plan, provider, clock, self.journal, self.flags, self.publish, lease.check,
                                 self.on_fenced, dry_run_steps)
        self.recovery = Recovery(self.journal, self.executor, self.flags, lease)
        self.automation = Automation(plan, self.policy)
        self.frozen = freeze.Freezes(plan)
        self.scheduler = Scheduler(plan)
        # The stakeholder updates the plan promises, and the folder published ones are archived in.
        self.cadence = Cadence(plan, plan.updates) if plan.updates is not None else None
        self.archive = archive
        self.publishing: asyncio.Task[str] | None = None  # an update being published: kept, archived, journaled
        self.publisher = Publisher(store, lambda: self.lease.fence, self.on_fenced)
        self.digest = plan.digest()  # what a sign-off binds to
        self.go_no_go = GoNoGo(plan, self.poller)
        self.heartbeat: asyncio.Task[None] | None = None
        self.backfill_task: asyncio.Task[None] | None = None

        # phase → the plan's own soak, where a drill shortened it (the banner says so).
        self.planned_holds: dict[int, float] = {}
        self.snapshot: Snapshot | None = None
        self.snapshot_listeners: list[Callable[[Snapshot], None]] = []
        self.fence_listeners: list[Callable[[Fenced], None]] = []
        self._published = 0.0  # wall time of the last snapshot written to the store
        self._publish_due: asyncio.TimerHandle | None = None
        # Awaited by close() before sources shut: background work fed by the listeners
        # (notification delivery) gets to finish what it was given.
        self.close_hooks: list[Callable[[], Awaitable[None]]] = []
        # Called at the end of start(), on the engine's loop, before the first tick: parts
        # outside the engine (a drill) journal their beginning where notifications can go out.
        self.start_hooks: list[Callable[[], None]] = []
        self._closed = False

    # ================================================================ state

    @property
    def store(self) -> Store:
        """The store as read from outside the engine's loop code (a test, a drill): after the writes in flight."""
        return self.store_thread.reader()

    @property
    def entry_listeners(self) -> list[Callable[[JournalEntry], None]]:
        return self.journal.listeners

    @property
    def provider(self) -> FlagProvider:
        return self.executor.provider

    @provider.setter
    def provider(self, provider: FlagProvider) -> None:
        """A drill wraps the provider with its flag-service faults."""
        self.executor.provider = self.flags.provider = provider

    @property
    def dry_run_steps(self) -> bool:
        return self.executor.dry_run_steps

    @dry_run_steps.setter
    def dry_run_steps(self, value: bool) -> None:
        self.executor.dry_run_steps = value

    @property
    def rollout(self) -> st.RolloutState:
        return self.journal.state

    @property
    def state(self) -> State:
        return self.journal.state.status

    @property
    def phase_index(self) -> int:
        return self.journal.state.phase

    @property
    def tasks(self) -> dict[str, asyncio.Task[str]]:
        return self.executor.tasks

    def desired(self) -> dict[str, FlagState]:
        return dict(self.journal.state.desired)

    def record(self, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        """Journal an entry for a part outside the engine (drills, notifications): no state change, listeners told."""
        if self.fenced is None:
            self.journal.entry(kind, message, AUTOMATIC, data)

    def _command(self, change: Callable[[st.RolloutState], tuple[st.RolloutState | None, list[Entry]]],
                 action: ActionWrite | None = None) -> st.RolloutState:
        """Commit a human command against the state as last read; Refused when the table forbids it now."""
        try:
            return self.journal.transition(change, action, expected_version=self.journal.version or None)
        except StaleState:
            raise CommandError("the rollout changed while this command was judged; look again and retry") from None
        except st.Refused as now:
            raise CommandError(f"not possible now: state is {State(str(now)).label if str(now) in State.__members__ else now}") from None

    # ================================================================ lifecycle

    async def start(self) -> None:
        """Take the lease (or EngineBusy), load the state, finish what a gone engine left."""
        if not self.lease.held:
            await self.lease.acquire()
        self.heartbeat = asyncio.ensure_future(self.lease.keep(self.on_fenced))
        await self.journal.load()
        await self.flags.read()
        if not self.rollout.started_at:
            self.recovery.initialise(self.policy, self.plan.rollout.name)
        if self.scheduler.fires:
            self.scheduler.remember(await self.store_thread.call(lambda store: list(store.iter_entries(kinds=JOURNALED))))
        fence, now, plan = self.lease.fence, self.clock.now(), self.plan.journal_copy()
        self.store_thread.send(lambda store: store.save_plan(fence, now, plan))
        self.recovery.journal_start(self.name)
        await self.recovery.recover()
        await self._apply(await self._look_at_freezes(self.clock.now(), first=True))  # a step up typed before the first tick is refused too
        if self.cadence is not None:
            updates = await self.store_thread.call(lambda s: s.updates())
            since = self.cadence.journal_seq()
            told = await self.store_thread.call(lambda s: list(s.iter_entries(after=since, kinds=(*INCIDENTS, *DECISIONS))))
            self.cadence.load(updates, told)
            self.entry_listeners.append(self.cadence.on_entry)
        if self.want_backfill:
            # In the background: a slow server must not hold back the first tick, nor a
            # rollback key pressed in the first seconds.
            self.backfill_task = asyncio.ensure_future(self.poller.backfill())
        for hook in self.start_hooks:
            hook()
        await self.journal.settled()

    def on_fenced(self, exc: Fenced) -> None:
        """Another engine took the lease over: stop acting at once (no flag write, no journal entry)."""
        if self.fenced is not None:
            return
        self.fenced = exc
        log.critical("%s: this engine stops acting now (the engine that took over finishes what is in flight)", exc)
        for task in list(self.executor.tasks.values()):
            task.cancel()
        for listener in self.fence_listeners:
            listener(exc)

    async def close(self, reason: str = "", stopped: dict[str, str] | None = None, by: Actor = AUTOMATIC) -> None:
        """Stop: journal it (and whether the rollout is left unguarded), give the lease up, shut the parts.

        `stopped`: how far the `warroom down` that stops it reaches (core/stopping.py), journaled for standbys to read;
        `by`: who asked for the stop, the journal entry's actor."""
        if self._closed:
            return
        self._closed = True
        self.poller.cancel()
        self.flags.cancel()
        self.frozen.cancel()
        for pending in (self.backfill_task, self._publish_due):
            if pending is not None:
                pending.cancel()
        if self.publishing is not None:  # an update half published would stay approved, never published
            # ... but a stop never waits on a store or an archive that hangs: the cadence drafts it again next time.
            _, late = await asyncio.wait((self.publishing,), timeout=PUBLISHING_GRACE)
            for task in late:
                task.cancel()
        await self.executor.cancel()
        if self.fenced is None and self.lease.held:
            self.journal.flush()
            await self.journal.settled()
            self.publish(force=True)
            why = f" ({reason})" if reason else ""
            data = {"epoch": self.lease.epoch, "holder": self.holder, "state": self.rollout.status.value, **(stopped or {})}
            standby = (stopped or {}).get("standby")  # `down --here` of a driver with a standby elsewhere: a handover
            if self.rollout.in_flight and not standby:  # the room must hear of it: nothing guards this launch now
                self.journal.entry(Kind.ENGINE_LEFT, f"engine of {self.name} stopped{why} with the rollout {self.rollout.status.label}: "
                                   "guardrails are NOT enforced until an engine runs again (warroom up PLAN)", by, data)
            else:
                self.journal.entry(Kind.ENGINE_STOP, f"engine of {self.name} stopped{why}"
                                   + (f"; {standby} takes over" if standby else ""), by, data)
            await self.journal.settled()  # taken over meanwhile, or the disk is full: said by the journal; the lease expires by itself
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        for hook in self.close_hooks:
            try:
                await hook()
            except Exception:  # one part's teardown must not keep the others from theirs
                log.exception("a part of the engine failed to close")
        if self.fenced is None:
            try:
                await self.lease.release()
            except StoreError as exc:
                log.error("the lease could not be released (it expires by itself): %s", exc)
        await self.poller.close()
        try:
            await self.provider.close()
        except Exception:  # the process is leaving; nothing is left to tell
            log.exception("the flag provider failed to close")
        self.store_thread.close()

    async def run(self, stop: asyncio.Event, after_tick: Callable[[Snapshot], Awaitable[None]] | None = None) -> None:
        """Tick every poll_interval of clock time until `stop` is set (or this engine is fenced).

        `after_tick` runs between ticks, awaited, the way a human acts between frames;
        a drill's scripted responder uses it so its timing is the same on every run.
        """
        while not stop.is_set() and self.fenced is None:
            started = self.clock.now()
            try:
                snap = await self.tick()
                if after_tick is not None and not stop.is_set():
                    await after_tick(snap)
            except Fenced as exc:
                self.on_fenced(exc)
                break
            if stop.is_set():
                break
            delay = self.plan.poll_interval - (self.clock.now() - started)
            if delay > 0:
                sleeper = asyncio.ensure_future(self.clock.sleep(delay))
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
                for t in (sleeper, stopper):
                    t.cancel()
            else:
                await asyncio.sleep(0)

    async def probe(self) -> tuple[list[tuple[QueryKey, str | None, Reading]], dict[str, FlagState | str | None]]:
        """Ask every query and read every flag once, for `warroom check` (no lease, no state, no journal).

        Returns (key, problem found without asking, reading) per query, and per flag its
        observed state, None (not created yet) or the error text.
        """
        ctx = self._context(self.clock.now())
        keys = self.poller.keys
        readings = await asyncio.gather(*(self.poller.query(key, ctx) for key in keys))
        queries = [(key, self.sources[key[0]].static_problem(key[1]), r) for key, r in zip(keys, readings, strict=True)]
        await self.flags.read()
        flags = {n: self.flags.errors.get(n) or self.flags.observed.get(n) for n in self.plan.flag_names()}
        return queries, flags

    async def wait_idle(self) -> None:
        """Wait until no action (step up, rollback) is executing."""
        await self.executor.wait_idle()

    # ================================================================ the tick

    def _context(self, now: float) -> SourceContext:
        flags = {n: s for n, s in self.flags.observed.items() if s is not None}
        return SourceContext(now=now, started_at=self.started_at, phase=self.phase_index, phase_started_at=self.rollout.phase_started_at,
                             exposure={n: s.exposure for n, s in flags.items()}, flags=flags)

    async def tick(self) -> Snapshot:
        """One evaluation: poll, judge guardrails and gates, act, publish."""
        self.journal.flush()
        self.journal.reload()
        now = self.clock.now()
        # The flags' read has the queries' budget: a hanging flag service leaves them as last read (and says
        # since when) while guardrails are judged and rollbacks decided at the tick's cadence.
        await asyncio.gather(self.poller.poll(now, self._context(now)), self.flags.read(self.poller.budget()))
        await self._apply(self.automation.source_health(self.poller.health_changes()))
        await self._apply(await self._look_at_freezes(now))
        self.tick_count += 1
        self.publisher.samples(now, self.poller.record_history())
        share = lambda: self.policy.planned_share(self.rollout)  # noqa: E731  (asked for each: a fire may roll back)
        for tracker, key, verdict in self.guardrails.evaluate(self.poller, now, self.policy.looks(self.rollout), share):
            # Applied before the next guardrail is judged: it sees the rollout as this one left it.
            await self._apply(self.automation.guardrail(tracker, key, verdict, self.rollout, now))
        await self._apply(self.automation.exposure(self.rollout, now))
        await self._reassert_rollback()
        self.recovery.set_back_late_writes(self.policy.new_drift(self.rollout))  # an interrupted step's late write is no drift
        await self._apply(self.automation.drift(self.rollout, self.journal.version, acting=bool(self.executor.tasks)))
        await self._sign_offs(now)
        await self._apply(self.scheduler.decide(self.rollout, self.clock.now(), self.step_blockers))
        await self._apply(self.automation.step(self.rollout, self.step_blockers))
        # From the picture as this tick left it; not while an update is being published (its draft is in use).
        if self.cadence is not None and not self._publishing:
            await self._apply(self.cadence.decide(self.snapshot or self.publish(), self.rollout, self.clock.now()))
        snap = self.publish()
        if self.clock.speed != 1.0:  # fast or virtual time: no cadence to keep, and a run must come out the same every time
            await self.journal.settled()
        return snap

    async def _sign_offs(self, now: float) -> None:
        """A sign-off timed out or lapsed (and what its timeout does); a granted one steps, once (a plan stepping
        by itself asks for the sign-off as any step up does: the automation's step finds no blocker until it is asked)."""
        expired = approvals.on_time(self.plan, self.rollout, digest=self.digest, now=now)
        if expired is not None:
            after, entries, then = expired
            try:
                self.journal.transition(lambda _now: (after, entries), expected_version=self.journal.version or None)
            except (StaleState, st.Refused):
                return  # a human answered meanwhile: the next tick looks again
            await self._apply(then)
        await self._step_on_grant()

    async def _step_on_grant(self) -> None:
        await self._apply(approvals.on_grant(self.plan, self.rollout, busy=bool(self.executor.tasks), blockers=self.step_blockers))

    @property
    def _virtual(self) -> bool:
        """Virtual time: the tick waits for the action it starts (or the clock would jump ahead of a flag write
        in flight); in real time it only starts it, so guardrails are judged while its writes retry."""
        return self.clock.speed == float("inf")

    async def _apply(self, decisions: Sequence[Decision | UpdateDecision]) -> None:
        """Do what the automation decided, through the command methods, as the automatic actor."""
        for decision in decisions:
            try:
                match decision:
                    case Note(kind, message, data):
                        self.journal.entry(kind, message, data=dict(data))
                    case Pause(reason, cause):
                        await self.pause(AUTOMATIC, reason, cause=cause)
                    case RollBack(reason, cause):
                        await self.rollback(AUTOMATIC, reason, cause=cause, wait=self._virtual)
                    case StepUp(actor, force, reason):
                        await self.step_up(actor, force=force, reason=reason, wait=self._virtual)
                    case Commit(change, version):
                        self.journal.transition(change, expected_version=version)
                    case DraftUpdate(update):
                        assert self.cadence is not None
                        self.cadence.drafted(replace(update, id=await self._put_update(update)))
                    case PublishUpdate(actor):
                        await self._publish_in_background(actor)
            except (CommandError, StaleState, st.Refused):
                pass  # the state moved meanwhile (a human acted first): the next tick looks again

    def freezes(self) -> tuple[Freeze, ...]:
        """The freezes in force at the last look (every tick): they refuse step ups, never going back."""
        return self.frozen.in_force

    async def _look_at_freezes(self, now: float, *, first: bool = False) -> list[Note]:
        return await self.frozen.look(now, lambda: self.store_thread.call(lambda store: store.freezes(since=self.started_at)),
                                      lambda: self.flags.vendor_freeze, virtual=self._virtual, first=first)

    def step_blockers(self, *, forced: bool = False) -> list[str]:
        """Why a step up is refused now. `forced` keeps only what even a force cannot override (a sign-off, a freeze)."""
        waiting = approvals.blocker(self.plan, self.rollout, self.clock.now())
        return self._policy_blockers(forced=forced) + ([waiting] if waiting else []) + self._time_blockers(forced=forced)

    def _policy_blockers(self, *, forced: bool = False) -> list[str]:
        return self.policy.step_blockers(self.rollout, self.guardrails.views, self.clock.now(),
                                         in_flight=bool(self.executor.tasks), forced=forced)

    def _time_blockers(self, *, forced: bool = False) -> list[str]:
        """The clock's (earliest times, business hours: a forced step up overrides them) and the freezes' (it does not)."""
        now = self.clock.now()
        soft = [] if forced else self.scheduler.blockers(self.rollout, now)
        return soft + self.frozen.blockers(now)

    def publish(self, *, force: bool = False) -> Snapshot:
        """Build the snapshot, tell the listeners, and write it to the store for every client.

        Writes closer together than PUBLISH_EVERY are coalesced into one, a moment later:
        a screen needs the latest picture, not every one.
        """
        self.snapshot = views.snapshot(
            self.plan, self.rollout, self.clock.now(), poller=self.poller, guardrails=self.guardrails, policy=self.policy, flags=self.flags,
            attempts=self.executor.attempts, journal=self.journal.tail(views.JOURNAL_TAIL), blockers=self.step_blockers(),
            force_blockers=self.step_blockers(forced=True), freezes=self.freezes(), next_scheduled=self.scheduler.next_change(self.rollout, self.clock.now()), driver=self.holder, tick=self.tick_count,
            clock_rate=0.0 if self._virtual else self.clock.speed, planned_holds=self.planned_holds,
            insecure=any(getattr(s, "insecure", False) for s in self.sources.values()),
            updates=self.cadence.view(self.clock.now()) if self.cadence is not None else None,
            awaiting=approvals.blocker(self.plan, self.rollout, self.clock.now()) or "")
        for listener in self.snapshot_listeners:
            listener(self.snapshot)
        wait = PUBLISH_EVERY - (time.time() - self._published)
        if force or wait <= 0:
            self._store_snapshot()
        elif self._publish_due is None:
            self._publish_due = asyncio.get_running_loop().call_later(wait, self._store_snapshot)
        return self.snapshot

    def _store_snapshot(self) -> None:
        self._publish_due = None
        if self.snapshot is None or self.fenced is not None or self.journal.held is not None or not self.lease.held:
            return
        self._published = time.time()
        body = self.snapshot.to_json()
        body.pop("journal")
        self.publisher.snapshot(body)

    # ================================================================ commands

    async def step_up(self, actor: Actor, *, force: bool = False, reason: str = "", wait: bool = True) -> str:
        """Step up to the next phase; with `wait` return when its flags are confirmed (or it failed)."""
        current = self.journal.reload()
        hard = self._policy_blockers(forced=True) + self._time_blockers(forced=True)  # a freeze: not even forced
        if hard:
            raise CommandError("cannot step up: " + "; ".join(hard))
        soft = self._policy_blockers() + self._time_blockers()
        if soft and not force:
            raise CommandError("cannot step up: " + "; ".join(soft) + " (force with a reason to override)")
        if force and soft and not reason.strip():
            raise CommandError("a forced step up needs a reason")
        total = len(self.plan.phases)
        if current.status == State.RUNNING and current.phase == total:
            entry: Entry = (Kind.ROLLOUT_COMPLETE, f"rollout complete at phase {total}/{total}", actor,
                            {"forced": bool(soft), "overridden": soft, "reason": reason})
            self._command(lambda now: (now.apply(st.Event.COMPLETE), [entry]))
            return "rollout complete"
        if approvals.needed(self.plan, current) is not None and approvals.granted(self.plan, current) is None:
            return self._ask_sign_off(actor, reason if force and soft else "")
        if current.phase == 0 and self.go_no_go.wanted:
            await self._decide_go(actor)
        ref, intent, entries = intents.step_up(self.plan, self.policy, current, self.clock.now(), actor, overridden=soft, reason=reason)
        # The sign-off is used by this step's intent, in its transaction: killed after it, the step is finished, never taken twice.
        self._command(lambda now: (now.apply(st.Event.STEP_INTENT, action=ref, approval=approvals.used(now, intent.to_phase)), entries),
                      ActionWrite(ref.id, new=(ref.kind, intent.to_json())))
        task = self.executor.launch(ref.id, self.executor.step(ref.id, intent, actor))
        return await asyncio.shield(task) if wait else f"stepping up to phase {intent.to_phase}"

    def _ask_sign_off(self, actor: Actor, reason: str) -> str:
        """Open the request the next step waits for (or say what it awaits); the step happens once it is granted."""
        current = self.journal.reload()
        req = approvals.current(self.plan, current)
        if req is None:
            exposures = {name: state.label() for name, state in self.policy.target_flags(current.phase + 1).items()}
            self._command(lambda now: approvals.ask(self.plan, now, digest=self.digest, exposures=exposures, actor=actor,
                                                    now=self.clock.now(), reason=reason))
            self.publish()
            req = approvals.current(self.plan, self.rollout)
        assert req is not None
        return f"{req.awaited(self.clock.now())}: the step up happens once approved (warroom approve PLAN)"

    async def _decide_go(self, actor: Actor) -> None:
        """The go/no-go, recorded before the first exposure; CommandError on NO-GO (the sign-off it used is spent)."""
        req = approvals.granted(self.plan, self.rollout)
        go, entry = await self.go_no_go.decide(req, actor, self.digest)

        self._command(lambda now: approvals.decided(now, go, entry))
        if not go:
            self.publish()
            raise CommandError(entry[1])

    async def approve(self, actor: Actor, note: str = "", digest: str | None = None) -> str:
        return await self._answer(actor, Answer.APPROVE, note, digest)

    async def reject(self, actor: Actor, note: str = "", digest: str | None = None) -> str:
        if not note.strip():
            raise CommandError("a rejection needs a note saying why (--note)")
        return await self._answer(actor, Answer.REJECT, note, digest)

    async def _answer(self, actor: Actor, given: Answer, note: str, digest: str | None) -> str:
        evidence = {view.id: view.value for view in self.guardrails.views}
        after = self._command(lambda now: approvals.answer(self.plan, now, actor=actor, given=given, note=note, evidence=evidence,
                                                           digest=self.digest, seen_digest=digest, now=self.clock.now()))
        self.publish()
        req = after.approval
        assert req is not None
        said = approvals.said(req, given, self.clock.now())
        if said is not None:
            return said
        await self._step_on_grant()
        return f"approved: sign-off complete, stepping up to phase {req.phase}"

    async def rollback(self, actor: Actor, reason: str = "manual rollback", *, cause: Mapping[str, Any] | None = None,
                       wait: bool = True) -> str:
        """Roll back; with `wait` return when the flags are confirmed and the runbook ran.

        The intent is committed (and a snapshot published) before this returns either way.
        Rolling back again when ROLLED BACK sets every flag that reads back exposed off again.
        """
        current = self.journal.reload()
        if current.status == State.ROLLED_BACK and self.policy.rollback_not_done(current):
            return await self._reassert_rollback(actor, wait=wait) or "already rolled back"
        ref, begin = intents.rollback(self.plan, self.policy, self.flags.observed, self.clock.now(), actor, reason=reason, cause=cause)
        try:
            intent = self.journal.begin(ref, begin)
        except st.Refused as already:
            # One rollback at a time: this one answers when the one in flight is done — its
            # runbook too (ROLLED BACK once the flags are off, while a resumed runbook still runs).
            running = self.rollout.action and self.executor.tasks.get(self.rollout.action.id)
            if wait and running:
                return await asyncio.shield(running)
            return "already rolling back" if str(already) == State.ROLLING_BACK.value or running else "already rolled back"
        self.publish()
        task = self.executor.launch(ref.id, self.executor.rollback(ref.id, intent, RollbackProgress()))
        return await asyncio.shield(task) if wait else "rolling back"

    async def _reassert_rollback(self, actor: Actor = AUTOMATIC, *, wait: bool | None = None) -> str | None:
        """A flag that reads back exposed after a rollback is a rollback not done: roll those flags back
        again (journaled, no human needed), ROLLING BACK until confirmed. None when nothing to do."""
        exposed = self.policy.rollback_not_done(self.rollout)
        if not exposed or self.rollout.action is not None or self.executor.tasks:
            return None
        ref, intent, entries = intents.reassert(self.policy, self.rollout, exposed, self.clock.now(), actor)
        try:
            self.journal.transition(lambda now: (st.begin_reassert(now, action=ref), entries),
                                    ActionWrite(ref.id, new=(ref.kind, intent.to_json())))
        except st.Refused:
            return None  # another process acted first
        self.publish()
        task = self.executor.launch(ref.id, self.executor.rollback(ref.id, intent, RollbackProgress()))
        if wait is None:
            wait = self._virtual  # as for a guardrail's rollback
        return await asyncio.shield(task) if wait else "rolling back again"

    async def pause(self, actor: Actor, reason: str = "", *, cause: Mapping[str, Any] | None = None) -> str:
        self._command(command_changes.pause(self.journal.reload(), actor, reason, cause))
        self.publish()
        return "paused"

    async def resume(self, actor: Actor) -> str:
        self._command(command_changes.resume(self.journal.reload(), actor))
        self.publish()
        return "resumed"

    async def retry(self, actor: Actor) -> str:
        """Leave ROLLED_BACK deliberately: back to PENDING, flags stay as rolled back."""
        self._command(command_changes.retry(self.journal.reload(), actor))
        self.publish()
        return "ready to start again: step up to enter phase 1"

    async def tick_item(self, actor: Actor, item: str, ticked: bool = True) -> str:
        change, done = command_changes.tick(self.plan, self.journal.reload(), actor, item, ticked)
        self._command(change)
        self.publish()
        return done

    async def _put_update(self, update: StoredUpdate) -> int:
        fence = self.lease.fence
        return await self.store_thread.call(lambda store: store.put_update(fence, update))

    async def _publish_in_background(self, actor: Actor) -> None:
        """Publish the update the cadence decided (auto) as a task: its store writes and archive file must not hold
        the tick (guardrails judged, rollbacks decided). One at a time; virtual time waits for it, for a repeatable run."""
        if self._publishing:
            return
        self.publishing = asyncio.ensure_future(self.publish_update(actor))
        self.publishing.add_done_callback(_published)
        if self._virtual:
            await asyncio.wait((self.publishing,))

    @property
    def _publishing(self) -> bool:
        return self.publishing is not None and not self.publishing.done()

    async def publish_update(self, actor: Actor, text: str = "") -> str:
        """Publish the stakeholder update approved by `actor`: the draft (one is drafted now if none waits),
        or `text` in its stead; kept in the store as approved, archived as HTML, journaled (the journal's
        listeners post it to the notify targets), then kept as published."""
        cadence = self.cadence
        if cadence is None:
            raise CommandError("this plan promises no stakeholder updates: add an `updates:` section (see the README)")
        going = self.publishing
        if going is not None and not going.done() and asyncio.current_task() is not going:
            await asyncio.wait((going,))  # the one going out first: never the same draft published twice
        now = self.clock.now()
        waiting = cadence.asked(self.snapshot or self.publish(), now)  # the draft as of now: it promises the next from now
        approved = cadence.approved(waiting, actor, text)
        approved = replace(approved, id=await self._put_update(approved))
        try:
            path = await asyncio.to_thread(update_archive.write, self.archive, replace(approved, published=now), rollout=self.plan.rollout.name,
                                           environment=self.plan.rollout.environment, owner=cadence.promise.owner)
        except OSError as exc:  # a full disk loses the file, not the update: the store keeps it, the channel hears it
            log.error("the update's HTML archive could not be written in %s: %s", self.archive, exc)
            path = None
        published, told = cadence.published_as(approved, now, str(path or ""), await self.store_thread.call(lambda s: s.last_seq()))
        await self._put_update(published)
        self.journal.entry(Kind.UPDATE_PUBLISHED, published.text, actor, told)
        cadence.published(published)
        self.publish()
        return f"stakeholder update {published.id} published" + (f"; archived as {path}" if path else "")

    async def ack_drift(self, actor: Actor) -> str:
        """Accept the observed flag states as the new truth and let automation go on."""
        change, answer = command_changes.ack_drift(self.plan, self.policy, self.journal.reload(), self.flags.observed, actor,
                                                   self.clock.now())
        self._command(change)
        self.publish()
        return answer
