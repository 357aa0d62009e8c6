"""Commands: what consoles, verbs and a drill's responder ask of the engine, and the loop that runs them.

Every way of acting goes through `dispatch`: a verb and its arguments, run as the
engine's command method with the human who asked (journaled with that person — user,
SSH client address, tty — never with the engine's identity). Who that is, is proven:
PostgreSQL records the session's role with each row; on SQLite a client of this host asks
the engine over its local socket and the engine queues the command for the person the
kernel names (`queue_for`, remembered in this process: a row's text could name anyone). A
row nothing proves — a client's own, with no engine here to take it — runs as its sender
declared it, shown "(declared, not proven)"; a sign-off from it counts for nothing. A rollback
that had to start its engine (none ran to take it) is named to that engine on its command line
by the process that queued it: the engine runs as that process's person, so the kernel proves
it (`started_for`).
Clients queue commands in the store; the driving engine claims each one in a transaction (no two engines run one
command; a rollback before anything queued ahead of it), runs it as a task of its own (a
slow step up never holds a rollback back), and writes the outcome. A command that waited
longer than its bound — on the store's clock, never a client's — is not run: a stale
step-up request must not fire minutes later. A rollback never expires.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from warroom.core.identity import Actor, from_database, from_kernel, login_uid
from warroom.core.journal_kinds import Kind
from warroom.core.verbs import Verb
from warroom.engine.executor import CommandError
from warroom.engine.journal import COMMAND
from warroom.store.base import Command, Fenced, Store, StoreError

if TYPE_CHECKING:
    from warroom.engine.engine import Engine

log = logging.getLogger(__name__)

MAX_AGE = 30.0  # seconds a command may wait for an engine and still run
NEVER_EXPIRE = tuple(v for v in Verb if v.never_expires)  # rolling back is the safe direction: late is better than never
CHECK_EVERY = 1.0  # seconds between two looks at the queue when nothing wakes the engine


async def dispatch(engine: Engine, verb: str, args: dict[str, Any], actor: Actor) -> str:
    """Run one command as `actor`; its outcome in words, or CommandError with why not."""
    if verb == Verb.STEP:
        return await engine.step_up(actor, force=bool(args.get("force")), reason=str(args.get("reason") or ""))
    if verb == Verb.PAUSE:
        return await engine.pause(actor, str(args.get("reason") or ""))
    if verb == Verb.RESUME:
        return await engine.resume(actor)
    if verb == Verb.ROLLBACK:
        return await engine.rollback(actor, str(args.get("reason") or f"manual rollback by {actor.label()}"))
    if verb == Verb.RETRY:
        return await engine.retry(actor)
    if verb == Verb.TICK:
        return await engine.tick_item(actor, str(args.get("item", "")), ticked=not args.get("undo"))
    if verb == Verb.ACK:
        return await engine.ack_drift(actor)
    if verb == Verb.UPDATE:
        return await engine.publish_update(actor, str(args.get("text") or ""))
    if verb in (Verb.APPROVE, Verb.REJECT):
        answer = engine.approve if verb == Verb.APPROVE else engine.reject
        return await answer(actor, str(args.get("note") or ""), str(args["digest"]) if args.get("digest") else None)
    raise CommandError(f"unknown command {verb!r}; known: {', '.join(Verb)}")


class CommandLoop:
    """Claims queued commands from the store and runs them, until stopped or fenced."""

    def __init__(self, engine: Engine, shutdown: Callable[[Command, Actor], Awaitable[str]]):
        self.engine = engine
        self.shutdown = shutdown  # the process decides how it stops (it may refuse during a rollback)
        self.running: set[asyncio.Task[None]] = set()
        self.resumed: set[int] = set()  # rollback commands the engine before left running, run again here
        self.proven: dict[int, Actor] = {}  # commands this engine queued for a sender the kernel named, until claimed
        self.started_for: int | None = None  # the rollback (its id) the process that started this engine queued
        # The phase, and when (this host's wall clock) this engine saw the rollout enter it: 0 for the phase
        # it found when it began to drive (it entered before). Every phase change commits a journal entry,
        # so a listener sees each; the first entry is the engine's own start, once its state is loaded.
        self.phase: tuple[int, float] | None = None
        engine.entry_listeners.append(self._phase_moved)

    def _phase_moved(self, _entry: Any) -> None:
        now = self.engine.journal.state.phase
        if self.phase is None or now != self.phase[0]:
            self.phase = (now, 0.0 if self.phase is None else time.time())

    def queue_for(self, store: Store, verb: str, args: dict[str, Any], actor: Actor) -> int:
        """On the store thread: queue a command for `actor` as proven, before any claim can see it."""
        command_id = store.send_command(verb, args, actor.to_json())
        self.proven[command_id] = actor
        return command_id

    def stale_step(self, args: dict[str, Any]) -> str | None:
        """Why a step is stale: the rollout left the phase it names (`from_phase`), or moved on after the
        step was asked (`waited`: seconds the sender had been running, i.e. since a human typed it). None
        when neither says so. Judged right before the step's intent commits, nothing awaited in between:
        of three forced steps typed at once, one moves the rollout and the others are refused."""
        now = self.engine.journal.reload().phase
        total = len(self.engine.plan.phases)
        where = f"{now}/{total} {self.engine.plan.phases[now - 1].name}" if now >= 1 else f"0/{total} (not started)"
        again = "look again and step from there if you still want to"
        if args.get("from_phase") is not None and int(args["from_phase"]) != now:
            return f"stale step: asked from phase {int(args['from_phase'])}, but the rollout is at phase {where} now; {again}"
        phase, since = self.phase or (now, 0.0)
        # Estimated on this host's clock from how long the sender had run (skew between hosts plays no part;
        # the time the command took to arrive makes it later, so a doubt lets the step go).
        asked = time.time() - float(args.get("waited") or 0.0)
        if phase == now and asked < since:
            return f"stale step: asked {since - asked:.1f}s before the rollout entered phase {where}; {again}"
        return None

    async def serve(self, stop: asyncio.Event) -> None:
        await self._take_over()
        waiter = await self.engine.store_thread.call(lambda store: store.watch(commands=True))
        try:
            while not stop.is_set() and self.engine.fenced is None:
                await self._claim_all(stop)
                stopping = asyncio.ensure_future(stop.wait())
                changed = asyncio.ensure_future(waiter.changed(CHECK_EVERY))
                try:
                    await asyncio.wait({stopping, changed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in (stopping, changed):
                        task.cancel()
                    await asyncio.gather(stopping, changed, return_exceptions=True)
        finally:
            waiter.close()

    async def _take_over(self) -> None:
        """Commands the engine before this one claimed and never answered: a rollback runs again
        (it is safe to ask twice); anything else is not run twice: its sender is told to look and ask again."""
        try:
            fence = self.engine.lease.fence
            left = await self.engine.store_thread.call(lambda store: store.take_over_commands(
                fence, NEVER_EXPIRE, "not finished: the engine running it stopped or was taken over "
                "mid-command; see the journal for what it did, and ask again"))
        except (Fenced, StoreError) as exc:
            log.error("cannot take over the commands left by the engine before: %s", exc)
            return
        # A rollback it had begun is resumed from the write-ahead journal as this engine starts; its command,
        # run again, may find it finished already: for its sender that is the rollback it asked for, done.
        self.resumed = {c.id for c in left if c.verb in NEVER_EXPIRE}
        for command in left:
            log.warning("command %s (%s) was left running by the engine before: %s", command.id, command.verb,
                        "running it again" if command.verb in NEVER_EXPIRE else "told its sender to ask again")

    async def _claim_all(self, stop: asyncio.Event) -> None:
        # Once stopped, claim no more: a flood still queued waits for the next engine, not this one's exit
        # (each command claimed now would be left running, and its sender told to ask again).
        while not stop.is_set() and self.engine.fenced is None:
            try:
                fence = self.engine.lease.fence
                command = await self.engine.store_thread.call(lambda store: store.claim_command(fence))  # noqa: B023  (awaited here)
            except Fenced as exc:
                self.engine.on_fenced(exc)
                return
            except StoreError as exc:  # a full disk: commands wait until it can be written
                log.error("cannot take commands: %s", exc)
                return
            if command is None:
                return
            task = asyncio.ensure_future(self._run(command))
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    def _from_starter(self, command: Command, declared: Actor) -> Actor | None:
        """The rollback the process that started this engine queued, as the kernel names its sender: this engine
        runs as that process's uid and login uid. Only a row declaring that very person: a row someone else
        wrote is never made this engine's user's."""
        if command.id != self.started_for or command.verb != Verb.ROLLBACK:
            return None
        proven = from_kernel(declared, os.getuid(), login_uid(os.getpid()))
        return proven if proven.user == declared.user else None

    async def _run(self, command: Command) -> None:
        engine = self.engine
        declared = Actor.from_json(command.actor).declared()
        # The kernel's word when this engine queued it for a local client; the database's (PostgreSQL: the session's
        # role); else the client's, shown as unproven.
        actor = (self.proven.pop(command.id, None) or self._from_starter(command, declared)
                 or (from_database(declared, command.sender) if command.sender else declared))
        age = command.waited  # on the store's clock: a client whose clock is off sends no "old" command
        COMMAND.set(command.id)  # this task's context: an action it starts is recorded on the command
        try:
            if command.verb not in NEVER_EXPIRE and age > MAX_AGE:
                status = "expired"
                message = f"not run: it waited {age:.0f}s for an engine (a {command.verb} older than {MAX_AGE:g}s could surprise); ask again"
                engine.journal.entry(Kind.COMMAND_EXPIRED, f"{command.verb} by {actor.label()} {message}", actor,
                                     {"command": command.id, "verb": command.verb, "age": age})
            elif command.verb == Verb.STEP and (stale := self.stale_step(command.args)) is not None:
                status, message = "refused", stale
            elif command.verb == Verb.SHUTDOWN:
                status, message = "done", await self.shutdown(command, actor)
            else:
                status, message = "done", await dispatch(engine, command.verb, command.args, actor)
                if command.id in self.resumed and message == "already rolled back":
                    message = "rolled back"
        except CommandError as exc:
            status, message = "refused", str(exc)
        except Fenced as exc:
            engine.on_fenced(exc)
            return  # the outcome belongs to the engine that took over; this one writes nothing
        except Exception as exc:  # a bug must not leave the client waiting for ever
            log.exception("command %s (%s) failed", command.id, command.verb)
            status, message = "failed", f"{type(exc).__name__}: {exc}"
        try:
            engine.publish(force=True)  # not coalesced away: its sender reads a snapshot that shows it
            fence = engine.lease.fence  # after what it decided and that snapshot, on the same thread: read in order
            await engine.store_thread.call(lambda store: store.finish_command(fence, command.id, status, message))
        except Fenced as exc:
            engine.on_fenced(exc)
        except StoreError as exc:
            log.error("the outcome of command %s could not be written: %s", command.id, exc)

    async def drain(self, timeout: float) -> None:
        """Give the commands in flight a moment to write their outcomes (a clean stop)."""
        if self.running:
            await asyncio.wait(list(self.running), timeout=timeout)
