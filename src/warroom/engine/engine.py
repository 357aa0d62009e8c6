"""The rollout engine: a façade over its parts — lifecycle, the tick, and the commands.

It knows nothing of any UI. It is driven by the clock it is given; each tick polls every
query and flag concurrently (polling.py), judges guardrails (guardrails.py) and what the
plan allows (policy.py), acts where a guardrail says so through write-ahead actions
(executor.py), and publishes an immutable Snapshot (views.py). Every UI and verb goes
through the same command methods. State changes go through the one transition table
(state.py), committed with their journal entries (journal.py).
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any, Awaitable, Callable

from ..clock import Clock
from ..flags.base import FlagProvider
from ..flagstate import FlagState
from ..identity import AUTOMATIC, Actor
from ..journal_kinds import Kind
from ..plan import Plan, format_duration
from ..snapshot import JournalEntry, Snapshot, State
from ..sources.base import Reading, Source, SourceContext
from ..store import StaleState, Store
from . import state as st
from . import views
from .executor import CommandError, Executor
from .guardrails import Guardrails
from .journal import ActionWrite, EngineJournal, Entry
from .lease import AutomationLease
from .ownership import ACTION_TTL, Owner
from .polling import FlagReader, Poller, QueryKey
from .policy import Policy, exposure_label
from .automation import Automation
from .recovery import Recovery

__all__ = ["CommandError", "Engine"]


class Engine:
    def __init__(
        self,
        plan: Plan,
        store: Store,
        provider: FlagProvider,
        sources: dict[str, Source],
        clock: Clock,
        *,
        actor: Actor,
        automation: bool = True,
        readonly: bool = False,
        dry_run_steps: bool = False,
        backfill: bool = True,
        announce: bool = True,
    ):
        self.plan = plan
        self.store = store
        self.sources = sources
        self.clock = clock
        self.actor = actor
        self.readonly = readonly
        self.want_backfill = backfill
        # One-shot CLI verbs do not journal console start/stop: only what they change.
        self.announce = announce
        self.holder = f"{actor.user}@{socket.gethostname()} pid {os.getpid()}"
        # Owner of the actions this engine starts: nobody else finishes them while it lives.
        self.owner = Owner.this_process()
        self.heartbeat: asyncio.Task | None = None
        ttl = max(15.0, 3 * plan.poll_interval / max(clock.speed, 1.0))
        self.lease = AutomationLease(store, self.holder, ttl, automation and not readonly)
        self.started_at = clock.now()
        self.tick_count = 0

        self.journal = EngineJournal(store, clock, self.holder, self._owner_claim)
        self.poller = Poller(plan, sources, clock)
        self.guardrails = Guardrails(plan, self.poller)
        self.flags = FlagReader(provider, plan.flag_names())
        self.policy = Policy(plan, self.poller, self.flags)
        self.executor = Executor(plan, provider, clock, self.journal, self.flags, self.publish, self._keep_actions, dry_run_steps)
        self.recovery = Recovery(self.journal, self.executor, self.flags, self.owner)
        self.automation = Automation(self)
        self.backfill_task: asyncio.Task | None = None

        self.snapshot: Snapshot | None = None
        self.snapshot_listeners: list[Callable[[Snapshot], None]] = []
        # Awaited by close() before sources shut: background work fed by the listeners
        # (notification delivery) gets to finish what it was given.
        self.close_hooks: list[Callable[[], Awaitable[None]]] = []
        # Called at the end of start(), on the engine's loop, before the first tick: parts
        # outside the engine (a drill) journal their beginning where notifications can go out.
        self.start_hooks: list[Callable[[], None]] = []
        self._closed = False

    # ================================================================ state

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
    def has_lease(self) -> bool:
        return self.lease.held

    @property
    def driver(self) -> str:
        return self.lease.driver

    @property
    def tasks(self) -> dict[str, asyncio.Task]:
        return self.executor.tasks

    def desired(self) -> dict[str, FlagState]:
        return dict(self.journal.state.desired)

    def _owner_claim(self, action_id: str | None) -> tuple[str, float] | None:
        """What an action-scoped commit records (a new action) or proves (an existing one): we own it."""
        import time

        return (self.owner.to_json(), time.time() + ACTION_TTL) if action_id else None

    def _keep_actions(self) -> None:
        """While this engine executes actions, renew its claim on them (wall time, like leases)."""
        if self.heartbeat is None or self.heartbeat.done():
            self.heartbeat = asyncio.ensure_future(self._beat())

    async def _beat(self) -> None:
        import time

        while self.executor.tasks:
            self.store.renew_actions(self.owner.to_json(), time.time() + ACTION_TTL)
            await asyncio.sleep(ACTION_TTL / 6)

    def record(self, kind: str, message: str, data: dict | None = None) -> None:
        """Journal an entry for a part outside the engine (drills, notifications): no state change, listeners told."""
        self.journal.entry(kind, message, AUTOMATIC, data)

    def _command(self, change: Callable[[st.RolloutState], tuple[st.RolloutState | None, list[Entry]]],
                 action: ActionWrite | None = None) -> st.RolloutState:
        """Commit a human command against the state this engine last read; refused if another process changed it."""
        try:
            return self.journal.transition(change, action, expected_version=self.journal.version)
        except StaleState:
            raise CommandError("the rollout changed under you (another console acted); look again and retry") from None

    # ================================================================ lifecycle

    async def start(self) -> None:
        """Load state, take the automation lease if free, finish what a dead console left."""
        self.journal.reload()
        await self.flags.read()
        if not self.rollout.started_at:
            self._initialise()
        if not self.readonly:
            self.store.save_plan(self.clock.now(), self.plan.journal_copy())
        self.lease.refresh()
        mode = "read-only" if self.readonly else ("driving" if self.has_lease else f"observing ({self.driver} drives)")
        if self.announce:
            self.journal.entry(Kind.CONSOLE_START, f"console started by {self.actor.label()}, {mode}", self.actor,
                               {"readonly": self.readonly, "automation": self.has_lease})
        if self.has_lease:
            await self.recovery.recover()
        if self.want_backfill:
            # In the background: a slow server must not hold back the first tick, nor a
            # rollback key pressed in the first seconds (commands wait for start()).
            self.backfill_task = asyncio.ensure_future(self.poller.backfill())
        for hook in self.start_hooks:
            hook()

    def _initialise(self) -> None:
        """A new rollout. Flags that already read exposed mean a lost or emptied state file over
        a live launch (or another launch's flags): paused, nothing steps up or down by itself."""
        exposed = self.policy.exposed_at_start()
        reason = ""
        entries: list[Entry] = [(Kind.CONSOLE_INIT, f"rollout {self.plan.rollout.name} initialised", self.actor, {})]
        if exposed:
            reason = (f"drift at start: {exposure_label(exposed)} already exposed, but this state file records no rollout "
                      "(new, emptied or lost). Nothing steps by itself: if the launch is live, `warroom ack PLAN` (key a) "
                      "adopts the flags as they are; `warroom rollback PLAN` (key R) turns them off")
            entries.append((Kind.DRIFT_DETECTED, f"DRIFT {reason.removeprefix('drift ')}", AUTOMATIC,
                            {"flags": {n: v.to_json() for n, v in exposed.items()}}))
        try:
            self.journal.transition(lambda current: (st.initialise(current, now=self.clock.now(), exposed=exposed, reason=reason), entries))
        except st.Refused:  # another process initialised it first
            self.journal.reload()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.poller.cancel()
        for task in filter(None, [self.backfill_task, self.heartbeat]):
            task.cancel()
        await self.executor.cancel()
        self.owner.retire()
        try:
            # Closing is provably gone: unfinished actions are for the next process to finish, now.
            self.store.renew_actions(self.owner.to_json(), 0.0)
            if self.announce:
                self.journal.entry(Kind.CONSOLE_STOP, f"console of {self.actor.label()} stopped", self.actor)
            self.lease.release()
        except Exception:  # closing goes on: the lease expires by itself
            pass
        for hook in self.close_hooks:
            try:
                await hook()
            except Exception:  # one part's teardown must not keep the others from theirs
                pass
        await self.poller.close()
        try:
            await self.provider.close()
        except Exception:  # the process is leaving; nothing is left to tell
            pass

    async def run(self, stop: asyncio.Event, after_tick: Callable[[Snapshot], Awaitable[None]] | None = None) -> None:
        """Tick every poll_interval of clock time until `stop` is set.

        `after_tick` runs between ticks, awaited, the way a human acts between frames;
        a drill's scripted responder uses it so its timing is the same on every run.
        """
        while not stop.is_set():
            started = self.clock.now()
            snap = await self.tick()
            if after_tick is not None and not stop.is_set():
                await after_tick(snap)
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
        """Ask every query and read every flag once, for `warroom check`.

        Returns (key, problem found without asking, reading) per query, and per flag its
        observed state, None (not created yet) or the error text.
        """
        self.journal.reload()
        ctx = self._context(self.clock.now())
        keys = self.poller.keys
        readings = await asyncio.gather(*(self.poller.query(key, ctx) for key in keys))
        queries = [(key, self.sources[key[0]].static_problem(key[1]), r) for key, r in zip(keys, readings)]
        await self.flags.read()
        flags = {n: self.flags.errors.get(n) or self.flags.observed.get(n) for n in self.plan.flag_names()}
        return queries, flags

    async def wait_idle(self) -> None:
        """Wait until no action (step up, rollback) is executing in this process."""
        await self.executor.wait_idle()

    # ================================================================ the tick

    def _context(self, now: float) -> SourceContext:
        exposure = {n: s.exposure for n, s in self.flags.observed.items() if s is not None}
        return SourceContext(now=now, started_at=self.started_at, phase=self.phase_index,
                             phase_started_at=self.rollout.phase_started_at, exposure=exposure)

    async def tick(self) -> Snapshot:
        """One evaluation: poll, judge guardrails and gates, act if ours to act, publish."""
        self.journal.reload()
        self.lease.refresh()
        now = self.clock.now()
        await asyncio.gather(self.poller.poll(now, self._context(now)), self.flags.read())
        self.automation.journal_source_health()
        self.tick_count += 1
        samples = self.poller.record_history()
        if self.has_lease:
            self.store.record_samples(now, samples)
        await self.automation.evaluate_guardrails(now)
        if self.has_lease:
            await self.recovery.recover()  # an action whose owner is provably gone is ours to finish
            await self._reassert_rollback()
            self.automation.check_drift()
            await self.automation.auto_step()
        return self.publish()

    def step_blockers(self, *, forced: bool = False) -> list[str]:
        """Why a step up is refused now. `forced` keeps only what even a force cannot override."""
        if self.readonly:
            return ["read-only console"]
        return self.policy.step_blockers(self.rollout, self.guardrails.views, self.clock.now(),
                                         in_flight=bool(self.executor.tasks), forced=forced)

    def next_change(self) -> str:
        return self.policy.next_change(self.rollout)

    def publish(self) -> Snapshot:
        self.snapshot = views.snapshot(self)
        for listener in self.snapshot_listeners:
            listener(self.snapshot)
        return self.snapshot

    # ================================================================ commands

    def _require_writable(self) -> None:
        if self.readonly:
            raise CommandError("read-only console: no action possible")

    async def step_up(self, actor: Actor, *, force: bool = False, reason: str = "", wait: bool = True) -> str:
        """Step up to the next phase; with `wait` return when its flags are confirmed (or it failed)."""
        self._require_writable()
        current = self.journal.reload()
        hard = self.step_blockers(forced=True)
        if hard:
            raise CommandError("cannot step up: " + "; ".join(hard))
        soft = self.step_blockers()
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
        target = current.phase + 1
        flags = self.policy.target_flags(target)
        action_id = self.store.new_action_id()
        intent = {
            "from_phase": current.phase,
            "to_phase": target,
            "flags": {n: s.to_json() for n, s in flags.items()},
            "previous": {n: s.to_json() for n, s in current.desired.items()},
            "forced": bool(soft),
            "reason": reason,
            # Why it was allowed: the gates as they stood, and how long the phase had soaked.
            "gates": self.policy.intent_gates(current),
            "soaked": None if current.phase_started_at is None else self.clock.now() - current.phase_started_at,
        }
        entries: list[Entry] = []
        if soft:
            entries.append((Kind.STEP_FORCED, f"FORCED step up by {actor.label()}: {reason}; overriding: " + "; ".join(soft), actor,
                            {"overridden": soft, "reason": reason}))
        why_auto = ""
        if actor.automatic and current.phase >= 1:
            phase = self.plan.phases[current.phase - 1]
            why_auto = f" (automatic: soak {format_duration(phase.hold)} done, {len(intent['gates'])} gate(s) green, required items ticked)"
        entries.append((Kind.STEP_INTENT, f"step up to phase {target}/{total} {self.plan.phases[target - 1].name}: {exposure_label(flags)}{why_auto}",
                        actor, intent))
        ref = st.ActionRef(action_id, "step_up", self.clock.now(), exposure_label(flags))
        self._command(lambda now: (now.apply(st.Event.STEP_INTENT, action=ref), entries), ActionWrite(action_id, new=("step_up", intent)))
        task = self.executor.launch(action_id, self.executor.step(action_id, intent, actor))
        return await asyncio.shield(task) if wait else f"stepping up to phase {target}"

    async def rollback(self, actor: Actor, reason: str = "manual rollback", *, cause: dict | None = None, wait: bool = True) -> str:
        """Roll back; with `wait` return when the flags are confirmed and the runbook ran.

        The intent is committed (and a snapshot published) before this returns either way.
        Rolling back again when ROLLED BACK sets every flag that reads back exposed off again.
        """
        self._require_writable()
        current = self.journal.reload()
        if current.status == State.ROLLED_BACK and self.policy.rollback_not_done(current):
            return await self._reassert_rollback(actor, wait=wait) or "already rolled back"
        flags = self.policy.rollback_flags()
        action_id = self.store.new_action_id()
        ref = st.ActionRef(action_id, "rollback", self.clock.now(), exposure_label(flags))
        intent: dict[str, Any] = {"flags": {n: s.to_json() for n, s in flags.items()}, "steps": len(self.plan.rollback.steps),
                                  "reason": reason, "cause": cause or {},
                                  "before": {n: s.to_json() for n in flags if (s := self.flags.observed.get(n)) is not None}}

        def change(now: st.RolloutState) -> tuple[st.RolloutState, list[Entry]]:
            # The rollback wins over anything in flight but another rollback: no version check.
            after = st.begin_rollback(now, action=ref, flags=flags)
            # Where it rolls back from, as it stands inside the transaction (the action row gets it too).
            intent.update(from_state=now.status.value, from_phase=now.phase)
            return after, [(Kind.ROLLBACK_INTENT, f"ROLLBACK by {actor.label()}: {reason}; flags → {exposure_label(flags)}", actor, intent)]

        try:
            self.journal.transition(change, ActionWrite(action_id, new=("rollback", intent)))
        except st.Refused as already:
            return "already rolling back" if str(already) == State.ROLLING_BACK.value else "already rolled back"
        self.publish()
        task = self.executor.launch(action_id, self.executor.rollback(action_id, intent, {}))
        return await asyncio.shield(task) if wait else "rolling back"

    async def _reassert_rollback(self, actor: Actor = AUTOMATIC, *, wait: bool | None = None) -> str | None:
        """A flag that reads back exposed after a rollback is a rollback not done: roll those flags back
        again (journaled, no human needed), ROLLING BACK until confirmed. None when nothing to do."""
        exposed = self.policy.rollback_not_done(self.rollout)
        if not exposed or self.rollout.action is not None or self.executor.tasks:
            return None
        rollback_flags = self.policy.rollback_flags()
        flags = {n: rollback_flags[n] for n in exposed}
        action_id = self.store.new_action_id()
        ref = st.ActionRef(action_id, "rollback", self.clock.now(), exposure_label(flags))
        reason = f"{exposure_label(exposed)} read back after the rollback: a late write landed, or someone set it"
        intent = {"flags": {n: s.to_json() for n, s in flags.items()}, "steps": 0, "runbook": False, "reason": reason,
                  "before": {n: s.to_json() for n, s in exposed.items()}, "from_state": State.ROLLED_BACK.value,
                  "from_phase": self.phase_index, "cause": {}}
        message = f"ROLLED BACK, but {reason}: the rollback is not done; flags → {exposure_label(flags)} again"
        try:
            self.journal.transition(lambda now: (st.begin_reassert(now, action=ref), [(Kind.ROLLBACK_REASSERT, message, actor, intent)]),
                                    ActionWrite(action_id, new=("rollback", intent)))
        except st.Refused:
            return None  # another process acted first
        self.publish()
        task = self.executor.launch(action_id, self.executor.rollback(action_id, intent, {}))
        if wait is None:
            wait = self.clock.speed == float("inf")  # as for a guardrail's rollback (see automation.py)
        return await asyncio.shield(task) if wait else "rolling back again"

    async def pause(self, actor: Actor, reason: str = "", *, cause: dict | None = None) -> str:
        self._require_writable()
        current = self.journal.reload()
        if current.status != State.RUNNING:
            raise CommandError(f"nothing to pause: state is {current.status.label}")
        reason = reason or f"paused by {actor.label()}"
        entry: Entry = (Kind.PAUSE, f"PAUSED: {reason}", actor, {"reason": reason, "cause": cause or {}})
        self._command(lambda now: (now.apply(st.Event.PAUSE, paused_reason=reason), [entry]))
        self.publish()
        return "paused"

    async def resume(self, actor: Actor) -> str:
        self._require_writable()
        current = self.journal.reload()
        if current.status != State.PAUSED:
            raise CommandError(f"nothing to resume: state is {current.status.label}")
        if current.drift:
            raise CommandError("flag drift is not acknowledged: ack it first (key a, or `warroom ack PLAN`)")
        entry: Entry = (Kind.RESUME, f"resumed by {actor.label()}", actor, {})
        self._command(lambda now: (now.apply(st.Event.RESUME, paused_reason=""), [entry]))
        self.publish()
        return "resumed"

    async def retry(self, actor: Actor) -> str:
        """Leave ROLLED_BACK deliberately: back to PENDING, flags stay as rolled back."""
        self._require_writable()
        current = self.journal.reload()
        if current.status != State.ROLLED_BACK or current.action is not None:
            raise CommandError(f"retry leaves ROLLED BACK; state is {current.status.label}"
                               + (" (rollback still finishing)" if current.action is not None else ""))
        entry: Entry = (Kind.RETRY, f"{actor.label()} starts the rollout again from the beginning", actor, {})
        self._command(lambda now: (now.apply(st.Event.RETRY, phase=0, phase_started_at=None, ticked={}, paused_reason=""), [entry]))
        self.publish()
        return "ready to start again: step up to enter phase 1"

    async def tick_item(self, actor: Actor, item: str, ticked: bool = True) -> str:
        self._require_writable()
        current = self.journal.reload()
        if current.phase < 1:
            raise CommandError("no phase is running yet: step up into phase 1 first")
        phase = self.plan.phases[current.phase - 1]
        ids = phase.item_ids()
        if item not in ids:
            matches = [iid for iid, it in zip(ids, phase.checklist) if item.lower() in it.text.lower()]
            if len(matches) != 1:
                raise CommandError(f"no single checklist item {item!r} in phase {current.phase}; items: " + ", ".join(ids))
            item = matches[0]
        text = phase.checklist[ids.index(item)].text
        items = dict(current.ticked_in())
        if ticked:
            items[item] = actor.label()
        else:
            items.pop(item, None)
        verb = "ticked" if ticked else "unticked"
        entry: Entry = (Kind.CHECKLIST_TICK if ticked else Kind.CHECKLIST_UNTICK, f"{verb}: {text}", actor,
                        {"item": item, "phase": current.phase})
        self._command(lambda now: (now.apply(st.Event.TICK, ticked={**now.ticked, now.phase: items}), [entry]))
        self.publish()
        return f"{verb}: {text}"

    async def ack_drift(self, actor: Actor) -> str:
        """Accept the observed flag states as the new truth and let automation go on."""
        self._require_writable()
        current = self.journal.reload()
        if not current.drift:
            raise CommandError("no flag drift to acknowledge")
        drift = dict(current.drift)
        desired = {**current.desired, **drift}
        resume = current.status == State.PAUSED and current.paused_reason.startswith("drift")
        changes: dict[str, Any] = {"desired": desired, "drift": {}}
        message = f"{actor.label()} acknowledged drift on {', '.join(drift)}; observed state accepted"
        if current.phase == 0:
            # Exposed before any step (a lost state file over a live launch): the phase these
            # flags are at, or no automatic step at all, never one down to phase 1.
            found = self.policy.phase_matching({n: s for n, s in self.flags.observed.items() if s is not None})
            if found:
                changes.update(phase=found, phase_started_at=self.clock.now(), desired={**desired, **self.policy.cumulative_flags(found)})
                message += f"; the flags are those of phase {found}/{len(self.plan.phases)} {self.plan.phases[found - 1].name}: now at it"
            else:
                resume = False
                changes["paused_reason"] = ("flags acknowledged as they are, but they match no phase of the plan: "
                                            "resume to step on from phase 0, or roll back")
                message += "; they match no phase: still paused"
        if resume:
            changes["paused_reason"] = ""
        entry: Entry = (Kind.DRIFT_ACK, message, actor, {"flags": {n: s.to_json() for n, s in drift.items()},
                                                          "phase": changes.get("phase", current.phase)})
        self._command(lambda now: (now.apply(st.Event.ACK_RESUME if resume else st.Event.ACK, **changes), [entry]))
        self.publish()
        return "drift acknowledged" + ("; resumed" if resume else "") + (f" at phase {changes['phase']}" if "phase" in changes else "")

    # ================================================================ automation

    async def recover_orphans(self) -> str:
        """For one-shot verbs, when no live process drives: finish what a gone process left.

        That is an action whose owner is provably gone, and a rollback that is not done
        (a flag reads back exposed under ROLLED BACK). Returns what was done ("": nothing).
        """
        if self.readonly or self.driver or not (self.recovery.orphans() or self.policy.rollback_not_done(self.rollout)):
            return ""
        self.lease.wanted = True
        self.lease.refresh()
        try:
            if not self.has_lease:
                return ""
            await self.flags.read()
            adopted = await self.recovery.recover()
            await self.wait_idle()
            self.journal.reload()
            reasserted = await self._reassert_rollback(wait=True)
            if reasserted:
                return "set flags back off: they read back exposed after the rollback (see the journal)"
            return "finished an action a stopped console had left unfinished (see the journal)" if adopted else ""
        finally:
            self.lease.release()
            self.lease.wanted = False
