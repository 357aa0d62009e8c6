"""Executing write-ahead actions: flag writes confirmed by read-back, step ups, rollbacks, runbooks.

An action's intent is already committed when it gets here. Every flag write is retried
(on retry.py, sleeping on the engine's clock) until a read-back confirms it; every
failed attempt is journaled with its number, which goes on across restarts. A step up
gives up after STEP_ATTEMPTS and pauses; a rollback never gives up. Each action runs as
its own task, so the tick loop (and the guardrails) never wait on a flag API.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from warroom.core.action_kinds import ActionKind
from warroom.core.clock import Clock
from warroom.core.flagstate import FlagState
from warroom.core.identity import AUTOMATIC, Actor
from warroom.core.journal_kinds import Kind
from warroom.core.secrets import redact
from warroom.core.snapshot import State
from warroom.engine import state as st
from warroom.engine.intents import RollbackIntent, RollbackProgress, RunningStep, StepIntent
from warroom.engine.journal import EngineJournal, Entry
from warroom.engine.policy import exposure_label
from warroom.engine.polling import FlagReader
from warroom.flags.base import FlagError, FlagProvider
from warroom.outbound.retry import Abandoned, Backoff, Failure, attempt_until
from warroom.outbound.runbook import StepResult, idempotency_key, run_step, stop_group
from warroom.plan.model import Plan
from warroom.store.base import ActionWrite, Fenced, StoreUnwritable, hostname, process_started

STEP_ATTEMPTS = 4  # a step up that cannot be confirmed gives up and pauses; a rollback never does
FLAG_BACKOFF = Backoff(initial=0.2, cap=5.0)


class CommandError(Exception):
    """A command that cannot run now; the message says why and what to do."""


def why_already(seen: FlagState, before: FlagState | None, desired: FlagState) -> str:
    """Why a flag reads back as wanted before another write: it simply was, or something set it."""
    if before is not None and before.matches(desired):
        return f"was already {seen.label()} before this action: confirmed by read-back, nothing to change"
    # A human set it by another road (the flag service's own UI while its API fails us),
    # or a write that seemed to fail landed: the read-back confirms it.
    return f"already reads back {seen.label()} (set outside warroom, or a failed attempt landed): confirmed without another write"


class Executor:
    def __init__(self, plan: Plan, provider: FlagProvider, clock: Clock, journal: EngineJournal, flags: FlagReader,
                 publish: Callable[[], Any], guard: Callable[[], Awaitable[None]], on_fenced: Callable[[Fenced], None], dry_run_steps: bool):
        self.plan = plan
        self.provider = provider
        self.clock = clock
        self.journal = journal
        self.flags = flags
        self.publish = publish
        self.guard = guard  # right before a flag write: Fenced unless this engine still holds its lease (and the intent is committed)
        self.on_fenced = on_fenced
        self.dry_run_steps = dry_run_steps
        self.tasks: dict[str, asyncio.Task[str]] = {}  # action id -> running task
        self.attempts: dict[str, tuple[int, str]] = {}  # action id -> (attempt, last error)
        self._steps_waiting: set[asyncio.Future[None]] = set()  # steps in flight, told when a rollback takes over

    # ------------------------------------------------------------ tasks

    def launch(self, action_id: str, coro: Awaitable[str]) -> asyncio.Task[str]:
        """Run an action as its own task, so the tick loop never waits on one."""
        task = asyncio.ensure_future(self._owned(action_id, coro))
        self.tasks[action_id] = task
        task.add_done_callback(functools.partial(self._finished, action_id))
        return task

    async def _owned(self, action_id: str, coro: Awaitable[str]) -> str:
        try:
            return await coro
        except Fenced as exc:
            # Another engine took the lease over (this one stood still too long): it finishes
            # the action from the journal; this one must not act again.
            self.attempts.pop(action_id, None)
            self.on_fenced(exc)
            raise

    def _finished(self, action_id: str, task: asyncio.Task[str]) -> None:
        self.tasks.pop(action_id, None)
        if not self.tasks and not task.cancelled():
            self.publish()  # a console opening now must not read "an action is still in flight"
        if not task.cancelled():
            task.exception()  # a task nobody awaits (an automatic step up) reports through the journal

    async def wait_idle(self) -> None:
        """Wait until no action (step up, rollback) is executing."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks.values()), return_exceptions=True)

    async def cancel(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
        for task in list(self.tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):  # closing: its outcome is the next engine's to find
                await task

    # ------------------------------------------------------------ one flag

    def _rolling_back(self) -> bool:
        return self.journal.reload().status.in_rollback

    async def _attempts_made(self, action_id: str, kind: Kind, name: str) -> int:
        """Attempts already journaled on a flag for this action (by a process that died), so numbers go on."""
        try:
            entries = await self.journal.thread.call(lambda store: store.entries(action_id=action_id))
        except StoreUnwritable:
            return 0  # a network store away: count from here (a retry must not wait for the journal)
        return max((e.data.get("attempt", 0) for e in entries if e.kind == kind and e.data.get("flag") == name), default=0)

    async def apply_flag(self, action_id: str, kind: ActionKind, name: str, desired: FlagState, attempts: int | None,
                         abandon: Callable[[], bool] | None = None, before: FlagState | None = None) -> FlagState | None:
        """Write one flag until a read-back confirms it; every failed attempt is journaled.

        `abandon` is asked before each retry: a step up stops retrying once a rollback took over.
        `before` is the flag as read when the action began. None when it gave up or was abandoned.
        """
        verb = kind.verb
        attempt_kind = Kind.STEP_ATTEMPT if kind is ActionKind.STEP_UP else Kind.ROLLBACK_ATTEMPT
        made = await self._attempts_made(action_id, attempt_kind, name)
        if attempts is not None and made >= attempts:
            return None

        async def attempt(number: int) -> FlagState:
            if number > 1 and (seen := await self._already(name, desired)) is not None:
                # Before a retry here: it may be set already (a failed attempt landed, a human).
                self.journal.entry(attempt_kind, f"{verb}: {name} {why_already(seen, before, desired)}", AUTOMATIC,
                                   {"flag": name, "attempt": made + number - 1, "confirmed_by_read": True,
                                    "was_already": before is not None and before.matches(desired)}, action_id)
                self.flags.confirmed(name, seen)
                return seen
            await self.guard()
            try:
                # With this engine's epoch: a provider whose API checks it refuses the write should this
                # process freeze right here and wake after a takeover.
                observed = await self.provider.write_verified(name, desired, epoch=self.journal.fence().epoch)
            except FlagError:
                raise
            except Exception as exc:  # a provider bug is a failed attempt like any other, retried
                raise FlagError(f"{type(exc).__name__}: {exc}") from None
            self.flags.confirmed(name, observed)
            if observed.enabled != desired.enabled:
                await self._fell_back(action_id, name, observed)
            return observed

        def failed(failure: Failure) -> None:
            number = made + failure.attempt
            reason = failure.error.reason if isinstance(failure.error, FlagError) else redact(str(failure.error))
            self.attempts[action_id] = (number, f"{name}: {reason}")
            self.journal.entry(attempt_kind, f"{verb} attempt {number} on {name} failed: {reason}", AUTOMATIC,
                               {"flag": name, "attempt": number, "error": reason}, action_id)
            self.publish()

        try:
            return await attempt_until(attempt, clock=self.clock, backoff=FLAG_BACKOFF,
                                       attempts=None if attempts is None else attempts - made,
                                       retry_on=FlagError, abandon=abandon, on_failure=failed)
        except (FlagError, Abandoned):
            return None

    async def _fell_back(self, action_id: str, name: str, observed: FlagState) -> None:
        """Confirmed exposing nobody, but not switched off: the flag service took another write. Said, so the room
        knows the flag is on at 0 % until someone switches it off once the service allows it."""
        why = await self.flags.provider.vendor_freeze() or "the flag service refused switching it off"
        self.journal.entry(Kind.FLAG_FALLBACK, f"{name}: {why}; read back {observed.label()}, exposing nobody", AUTOMATIC,
                           {"flag": name, "observed": observed.to_json(), "why": why}, action_id)

    async def _already(self, name: str, desired: FlagState) -> FlagState | None:
        """The flag's observed state when it already is the desired one; None otherwise or unreadable."""
        try:
            seen = await self.provider.read(name)
        except Exception:  # the service is still down: the next write attempt says how
            return None
        return seen if seen is not None and seen.matches(desired) else None

    # ------------------------------------------------------------ step up

    async def step(self, action_id: str, intent: StepIntent, actor: Actor) -> str:
        target, flags = intent.to_phase, intent.flags
        results = await self._step_writes(action_id, flags)
        self.attempts.pop(action_id, None)
        confirmed = {n: r for n, r in zip(flags, results, strict=True) if r is not None}
        try:
            if not self._rolling_back():
                if len(confirmed) == len(flags):
                    return self._step_entered(action_id, target, confirmed, actor)
                self._step_failed(action_id, target, confirmed, [n for n in flags if n not in confirmed])
        except st.Refused:
            pass  # a rollback committed after the check: it won
        return await self._abandon_step(action_id, target, confirmed)

    async def _step_writes(self, action_id: str, flags: Mapping[str, FlagState]) -> list[FlagState | None]:
        """The step's flags written until confirmed (None: not confirmed). Once a rollback takes over the
        step stops at once, even mid-write: waiting on a write the rollback made moot (a slow flag API)
        would leave the step's outcome to whenever it answers, and an engine stopping meanwhile (`down`,
        `--for`) would leave the intent without one. A write that still lands is the rollback's to undo:
        its read-back sets the flag off again."""
        if self._rolling_back():
            return [None] * len(flags)
        writes = asyncio.ensure_future(asyncio.gather(*(self.apply_flag(action_id, ActionKind.STEP_UP, n, s, STEP_ATTEMPTS, self._rolling_back)
                                                        for n, s in flags.items())))
        took_over = asyncio.get_running_loop().create_future()
        self._steps_waiting.add(took_over)
        try:
            await asyncio.wait({writes, took_over}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._steps_waiting.discard(took_over)
            if not writes.done():
                writes.cancel()
        try:
            return await writes
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this step itself is cancelled (its engine closing, or fenced)
            return [None] * len(flags)  # stopped here: a rollback took over

    def _rollback_began(self) -> None:
        for waiting in self._steps_waiting:
            if not waiting.done():
                waiting.set_result(None)

    def _step_entered(self, action_id: str, target: int, confirmed: dict[str, FlagState], actor: Actor) -> str:
        """The step's flags read back at target: the new phase, in whatever state the rollout is in now."""
        name = self.plan.phases[target - 1].name
        message = f"now at phase {target}/{len(self.plan.phases)} {name}; read back {exposure_label(confirmed)}"
        data = {"observed": {n: r.to_json() for n, r in confirmed.items()}, "entered_phase": target}

        def change(current: st.RolloutState) -> tuple[st.RolloutState, list[Entry]]:
            after = st.enter_phase(current, action_id=action_id, phase=target, now=self.clock.now(), flags=confirmed)
            paused = f"; stays PAUSED: {current.paused_reason}" if after.status == State.PAUSED else ""
            return after, [(Kind.STEP_OUTCOME, message + paused, actor, {**data, "stays_paused": bool(paused)})]

        now = self.journal.transition(change, ActionWrite(action_id, status="done"))
        self.publish()
        if now.status == State.PAUSED:
            return f"stepped up to phase {target}; still PAUSED ({now.paused_reason})"
        return f"stepped up to phase {target}"

    def _step_failed(self, action_id: str, target: int, confirmed: dict[str, FlagState], failed: list[str]) -> None:
        reason = f"step up to phase {target} failed: {', '.join(failed)} not confirmed after {STEP_ATTEMPTS} attempts"

        def change(current: st.RolloutState) -> tuple[st.RolloutState, list[Entry]]:
            after = st.step_failed(current, action_id=action_id, reason=reason, confirmed=confirmed)
            return after, [(Kind.STEP_OUTCOME, reason + "; paused for a human", AUTOMATIC, {"failed": failed})]

        self.journal.transition(change, ActionWrite(action_id, status="failed"))
        self.publish()
        raise CommandError(reason)

    async def _abandon_step(self, action_id: str, target: int, landed: dict[str, FlagState]) -> str:
        """A rollback took over: a write of ours that landed after the rollback's would leave the new
        code exposed under ROLLED BACK, so put those flags back to what the rollback set, until confirmed."""
        rollback_flags = self.journal.reload().desired
        late = [n for n in landed if n in rollback_flags
                and ((seen := self.flags.observed.get(n)) is None or not seen.matches(rollback_flags[n]))]
        results = await asyncio.gather(*(self.apply_flag(action_id, ActionKind.ROLLBACK, n, rollback_flags[n], None) for n in late))
        undone = {n: r for n, r in zip(late, results, strict=True) if r is not None}  # a rollback's write never gives up
        message = f"step up to phase {target} abandoned: a rollback took over"
        if late:
            message += f"; its late write was undone, read back {exposure_label(undone)}"
        self.journal.write([(Kind.STEP_OUTCOME, message, AUTOMATIC, {"undone": {n: r.to_json() for n, r in undone.items()}})],
                           ActionWrite(action_id, status="abandoned"))
        self.publish()
        return "step up abandoned: rolled back meanwhile"

    # ------------------------------------------------------------ rollback

    async def rollback(self, action_id: str, intent: RollbackIntent, progress: RollbackProgress) -> str:
        self._rollback_began()  # a step in flight stops now: the rollback owns the flags
        flags = intent.flags
        if not progress.flags_confirmed:
            results = await asyncio.gather(*(self.apply_flag(action_id, ActionKind.ROLLBACK, n, s, None, before=intent.before.get(n))
                                             for n, s in flags.items()))
            self.attempts.pop(action_id, None)
            progress = RollbackProgress(flags_confirmed=True)
            # A rollback's write is retried until a read-back confirms it: none gives up (apply_flag's None is for a step up).
            confirmed = {n: r for n, r in zip(flags, results, strict=True) if r is not None}
            entry: Entry = (Kind.ROLLBACK_CONFIRMED, f"flags confirmed by read-back: {exposure_label(confirmed)}",
                            AUTOMATIC, {"observed": {n: r.to_json() for n, r in confirmed.items()}})
            self.journal.transition(lambda current: (st.rollback_confirmed(current), [entry]),
                                    ActionWrite(action_id, progress=progress.to_json()))
            self.publish()
        runbook = intent.runbook
        failures = await self._runbook(action_id, intent, progress) if runbook else []
        if runbook:
            summary = "rolled back" + (f"; {len(failures)} runbook step(s) failed: {', '.join(failures)}" if failures else "")
        else:
            summary = "rolled back again: flags confirmed off (the runbook already ran)"
        outcome: Entry = (Kind.ROLLBACK_OUTCOME, summary, AUTOMATIC, {"failed_steps": failures})
        self.journal.transition(lambda current: (st.action_finished(current, action_id=action_id), [outcome]),
                                ActionWrite(action_id, status="done"))
        self.publish()
        return summary

    async def _runbook(self, action_id: str, intent: RollbackIntent, progress: RollbackProgress) -> list[str]:
        """The rollback's runbook steps not done yet (a resumed rollback skips the done ones); the failed ones' names."""
        self._stop_left_running(action_id, progress)
        failures = []
        for index, step in enumerate(self.plan.rollback.steps):
            if index in progress.steps_done:
                continue
            context = {"rollout": self.plan.rollout.name, "environment": self.plan.rollout.environment,
                       "phase": intent.from_phase, "reason": intent.reason}

            async def started(pgid: int, index: int = index, progress: RollbackProgress = progress) -> None:
                # Before it can do anything: the next engine stops it if this one dies mid-step. Handed to the
                # store thread is not enough: killed before the commit, this engine would leave no record, and the
                # next one would run the step beside this one. So the step waits for the commit (or for it to be
                # held, the store unwritable: going back never waits on a full disk), as a flag write waits for its intent.
                running = RunningStep(index, pgid, hostname(), process_started(pgid))
                self.journal.write([], ActionWrite(action_id, progress=replace(progress, running=running).to_json()))
                await self.journal.settled()

            key = idempotency_key(self.plan.rollout.name, action_id, index)  # the same on an engine that re-runs it
            result: StepResult = await run_step(step, context, dry_run=self.dry_run_steps, started=started, key=key)
            if not result.ok:
                failures.append(result.name)
            progress = replace(progress, steps_done=(*progress.steps_done, index), running=None)
            self.journal.write([(Kind.ROLLBACK_STEP, f"step {index + 1} {result.name}: {result.summary}", AUTOMATIC,
                                 {"step": index, "ok": result.ok, "dry_run": result.dry_run, "detail": result.detail})],
                               ActionWrite(action_id, progress=progress.to_json()))
        return failures

    def _stop_left_running(self, action_id: str, progress: RollbackProgress) -> None:
        """A step the engine before this one was running when it died may still run (its shell, its
        children): stop that process group before the step runs again, so it never runs twice at once."""
        running = progress.running
        if running is None or running.host != hostname() or running.step in progress.steps_done:
            return
        pgid = running.pgid
        if running.started is not None and process_started(pgid) != running.started:
            return  # that pid is another process now: the step's group is gone
        if stop_group(pgid):
            self.journal.entry(Kind.ROLLBACK_STEP_STOPPED, f"step {running.step + 1}: its process group {pgid}, left running by the "
                               "engine before, was stopped; the step runs again", AUTOMATIC,
                               {"step": running.step, "stopped_pgid": pgid}, action_id)
