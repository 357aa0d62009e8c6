"""The always-on engine process: one per rollout, whatever the terminals do.

`warroom engine PLAN` (foreground: systemd, a container, tmux), `warroom up PLAN` (the
same, detached) and `warroom run --headless PLAN` all run this. It takes the rollout's
lease or waits as a standby until it can; then it ticks, runs the commands clients queue
in the store, and publishes snapshots until told to stop.

- SIGTERM / SIGINT stop it cleanly (journaled, lease released). While a rollback is in
  flight it says so and finishes the rollback first; a second signal stops it at once
  (the rollback stays pending in the write-ahead journal: the next engine finishes it).
- While it drives it also listens on its host's local socket (local_socket.py): a rollback
  or a pause reaches it there when the store cannot take them (a full disk).
- SIGHUP is ignored: an engine started by hand in an SSH shell keeps guarding when the
  session drops. Its terminal may be gone, so output never crashes it: every line goes to
  the log file next to the state, and to the terminal only while it takes them.
- Taken over while frozen (fenced): it stops acting at once, says so, and exits.
- `warroom down` asks through the store (commands.py). It is refused while a live launch
  would be left unguarded (stopping.py) unless forced; the stop is journaled with how far it
  reaches (core/stopping.py), and a standby within reach stops too rather than take over.
- `warroom up --replace` hands the lease over without a gap: this engine is told (a
  `shutdown` with `handover`), then a new one takes the lease from it in one write (the
  store's `replacing`); this one finds itself fenced by it, says it was replaced, and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from warroom.core.exit_codes import Exit
from warroom.core.identity import AUTOMATIC, Actor
from warroom.core.journal_kinds import Kind
from warroom.core.lines import entry_line, stamp, status_line
from warroom.core.snapshot import JournalEntry, Snapshot
from warroom.core.stopping import StopScope, reaches
from warroom.core.units import format_duration
from warroom.engine.commands import CommandLoop
from warroom.engine.engine import Engine
from warroom.engine.executor import CommandError
from warroom.engine.lease import HEARTBEAT
from warroom.engine.local_socket import LocalSocket
from warroom.engine.output import Output
from warroom.engine.stopping import left_unguarded
from warroom.store.base import Command, Fenced, LeaseInfo, StoreError, hostname

DRAIN = 2.0  # seconds commands in flight get to write their outcomes on a clean stop
STEP_GRACE = 15.0  # seconds a step up in flight gets to end on a clean stop (a rollback gets as long as it takes)
HANDOVER_WAIT = 30.0  # seconds a handover waits for the new engine to take the lease (as long as `up` waits for one to start)
STANDBY_FRESH = 3 * HEARTBEAT  # a standby silent longer is gone (clients count it so too)


@dataclass
class RunOptions:
    until_done: bool = False  # stop once COMPLETE or ROLLED BACK with nothing in flight
    run_for: float | None = None  # stop after this much clock time
    status_every: float = 60.0  # clock seconds between status lines
    after_tick: Callable[[Snapshot], Awaitable[None]] | None = None  # a drill's part between ticks
    replace: str = ""  # the holder id of the engine this one replaces (`up --replace`): the lease is taken from it
    rollback: int | None = None  # the rollback its starter queued (`rollback` with no engine): proven as its sender's


class EngineProcess:
    def __init__(self, engine: Engine, output: Output, options: RunOptions):
        self.engine = engine
        self.out = output
        self.options = options
        self.stop = asyncio.Event()
        self.signals = 0
        self.commands = CommandLoop(engine, self._shutdown)
        self.commands.started_for = options.rollback
        self._last_status = float("-inf")
        self._started = engine.clock.now()
        self._driver = ""  # who drives while this one stands by
        self._seen: int | None = None  # the journal's end when this engine began: stops journaled later may reach it
        self._stopped: dict[str, str] = {}  # how far the `down` that stops it reaches, journaled with its stop
        self._stopped_by: Actor = AUTOMATIC  # who asked for that `down`: the stop entry's actor
        self._handover_until = 0.0  # monotonic time until which a takeover is the handover asked for
        self.replaced = ""  # the engine that took over from this one on request (`up --replace`)

    # ------------------------------------------------------------ what it says

    def _entry(self, entry: JournalEntry) -> None:
        self.out.line(entry_line(entry))

    def _snapshot(self, snap: Snapshot) -> None:
        options = self.options
        if snap.now - self._last_status >= options.status_every:
            self._last_status = snap.now
            self.out.line(status_line(snap))
        if options.until_done and snap.state.terminal and not snap.action and not self.engine.tasks:
            self.stop.set()
        if options.run_for is not None and snap.now - self._started >= options.run_for and not self.stop.is_set():
            self.out.line(f"{stamp(snap.now)} {'stop':<18} ran for {format_duration(options.run_for)} of clock time (--for)")
            self.stop.set()

    def _say(self, text: str) -> None:
        self.out.line(f"{stamp(self.engine.clock.now())} {'engine':<18} {text}")

    # ------------------------------------------------------------ stopping

    def _signal(self, signum: int) -> None:
        self.signals += 1
        name = signal.Signals(signum).name
        if self.signals > 1:
            if self.engine.tasks:
                self._say(f"{name} again: stopping now; what is in flight stays pending in the journal and the next engine finishes it")
            self.stop.set()
            return
        if self.engine.rollout.rollback_in_flight:
            action = self.engine.snapshot.action if self.engine.snapshot else None
            how = f" (attempt {action.attempt} failed: {action.last_error})" if action and action.attempt else ""
            self._say(f"{name}: a rollback is in flight{how}; finishing it before stopping. "
                      f"Send {name} again to stop now (the next engine finishes it)")
            asyncio.ensure_future(self._stop_when_idle(None))
        elif self.engine.tasks:
            self._say(f"{name}: a step up is in flight; stopping once it ends (at most {STEP_GRACE:g}s; send {name} again to stop now)")
            asyncio.ensure_future(self._stop_when_idle(STEP_GRACE))
        else:
            self.stop.set()

    async def _stop_when_idle(self, timeout: float | None) -> None:
        """Stop once nothing is in flight (guardrails are judged meanwhile), or after `timeout`."""
        try:
            await asyncio.wait_for(self.engine.wait_idle(), timeout)
        except TimeoutError:
            self._say(f"the step up did not end within {timeout:g}s: stopping; the next engine reconciles it from the journal")
        self.stop.set()

    async def _shutdown(self, command: Command, actor: Actor) -> str:
        """`warroom down`, or the first half of `up --replace` (`handover`)."""
        args = command.args
        if args.get("handover"):
            self._handover_until = time.monotonic() + HANDOVER_WAIT
            self._say(f"handing over: asked by {actor.label()} (warroom up --replace); guarding until the new engine takes the lease")
            return f"engine {self.engine.holder} guards until the new engine takes its lease"
        try:
            scope = StopScope(args.get("scope", StopScope.ROLLOUT.value))
        except ValueError:
            raise CommandError(f"unknown stop scope {args.get('scope')!r}: this engine knows {', '.join(s.value for s in StopScope)}") from None
        force = bool(args.get("force"))
        if self.engine.rollout.rollback_in_flight and not force:
            raise CommandError("a rollback is in flight: stopping the engine now would leave it to the next one; "
                               "wait for it, or `warroom down PLAN --force`")
        taking_over = self._standby_elsewhere() if scope == StopScope.HOST else ""
        unguarded = "" if force or taking_over else left_unguarded(self.engine)
        if unguarded:
            raise CommandError(unguarded)
        how = "every engine of the rollout" if scope == StopScope.ROLLOUT else f"the engines on {hostname()}"
        self._say(f"stopping: asked by {actor.label()} (warroom down: {how})" + (f"; {taking_over} takes over" if taking_over else ""))
        # Who asked is journaled with the stop (the engine's log alone said it): as proven, or marked as only declared.
        self._stopped = {**scope.data(hostname()), "by": actor.label(), **({"standby": taking_over} if taking_over else {})}
        self._stopped_by = actor
        self.stop.set()
        return f"stopping engine {self.engine.holder}"

    def _standby_elsewhere(self) -> str:
        """A standby on another host, alive: it takes over when this host's engine stops (its label), or ""."""
        try:
            standbys, now = self.engine.store.standbys(), self.engine.store.now()  # heartbeats are on the store's clock
        except StoreError:
            return ""
        ready = [s.holder for s in standbys if s.holder.host != hostname() and now - s.heartbeat <= STANDBY_FRESH]
        return f"standby {ready[0].label()}" if ready else ""

    def _stop_reaching_this(self) -> str:
        """A stop journaled since this engine began that reaches it (`down` of every engine, or of
        this host's): its message; "" when none (or the store cannot tell now)."""
        store = self.engine.store
        try:
            if self._seen is None:
                self._seen = store.last_seq()
                return ""
            for entry in store.iter_entries(after=self._seen, kinds=(Kind.ENGINE_STOP, Kind.ENGINE_LEFT)):
                self._seen = entry.seq
                if reaches(entry.data, hostname()):
                    return entry.message
        except StoreError:
            pass
        return ""

    async def _stop_with_the_driver(self) -> None:
        """As a standby: stop when the driver was stopped by a `down` that reaches this engine too."""
        while not self.stop.is_set():
            stopped = self._stop_reaching_this()
            if stopped:
                self._say(f"stopping as well: {stopped} (warroom down reaches this standby too)")
                self.stop.set()
                return
            await asyncio.sleep(HEARTBEAT)

    def _fenced(self, exc: Fenced) -> None:
        if time.monotonic() < self._handover_until and exc.now is not None and exc.now.holder is not None:
            self.replaced = exc.now.holder.label()
        self.stop.set()

    # ------------------------------------------------------------ the life of it

    async def serve(self) -> Snapshot | None:
        """Standby until the lease is ours, then drive until stopped; the last snapshot (None: never drove)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._signal, sig)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # an SSH session ending is no reason to stop guarding
        engine = self.engine
        engine.lease.replacing = self.options.replace
        self._stop_reaching_this()  # where the journal ends now: a later stop may reach this engine
        try:
            waits = [asyncio.ensure_future(self._stop_with_the_driver())]
            if self.options.run_for is not None:
                waits.append(asyncio.ensure_future(self._run_for_as_standby()))
            try:
                if not await engine.lease.wait(self.stop, self._standby):
                    return None
            finally:
                for task in waits:
                    task.cancel()
            stopped = self._stop_reaching_this()  # its driver's stop may have come between its last look and the lease
            if stopped:
                self._say(f"stopping as well: {stopped} (warroom down reaches this engine too)")
                await engine.lease.release()
                return None
            engine.entry_listeners.append(self._entry)
            engine.snapshot_listeners.append(self._snapshot)
            engine.fence_listeners.append(self._fenced)
            try:
                await engine.start()
            except Fenced as exc:
                engine.on_fenced(exc)
            if engine.fenced is None:
                serving = asyncio.ensure_future(self.commands.serve(self.stop))
                local = asyncio.ensure_future(LocalSocket(engine, self.commands).serve(self.stop))  # what must reach it without a disk write
                await engine.run(self.stop, self.options.after_tick)  # until stopped or fenced
                await self.commands.drain(DRAIN)
                serving.cancel()
                local.cancel()
            if self.replaced:
                self._say(f"replaced: engine {self.replaced} holds the lease now (warroom up --replace); this engine stops")
            elif engine.fenced is not None:
                self._say(f"FENCED: {engine.fenced}. This engine wrote nothing after it; it exits")
            reason = "signal" if self.signals else f"warroom down by {self._stopped['by']}" if self._stopped else ""
            snap = engine.snapshot
            await engine.close(reason, self._stopped, self._stopped_by)
            return snap
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def _run_for_as_standby(self) -> None:
        """`--for` counts from the start, standing by or not: a run that never gets to drive ends too."""
        clock, limit = self.engine.clock, self.options.run_for
        assert limit is not None
        left = limit - (clock.now() - self._started)
        # Virtual time stands still for a standby (it moves with ticks): its --for counts in seconds.
        await (asyncio.sleep(left) if clock.speed == float("inf") else clock.sleep(left))
        self.out.line(f"{stamp(clock.now())} {'stop':<18} ran for {format_duration(limit)} of clock time (--for) as a standby: "
                      f"engine {self._driver} drives this rollout")
        self.stop.set()

    def _standby(self, lease: LeaseInfo) -> None:
        assert lease.holder is not None
        self._driver = lease.holder.label()
        self._say(f"standby: engine {lease.holder.label()} drives this rollout (epoch {lease.epoch}); "
                  "waiting to take over if it stops or its lease runs out")


async def serve_engine(engine: Engine, *, log_path: Path | None, options: RunOptions | None = None,
                       terminal: TextIO | None = None) -> tuple[Snapshot | None, int]:
    """Run the engine process to its end: (its last snapshot, exit code: 0, or Exit.FENCED)."""
    output = Output(log_path, terminal if terminal is not None else sys.stdout)
    # On the root logger: a library's warning (or asyncio's) must not go to stderr by itself,
    # where an unread terminal would block the engine; warnings likewise.
    root, ours = logging.getLogger(), logging.getLogger("warroom")
    root.addHandler(output)
    ours.setLevel(logging.INFO)
    logging.captureWarnings(True)
    logging.raiseExceptions = False  # a log line that cannot be written must never take the engine down
    try:
        process = EngineProcess(engine, output, options or RunOptions())
        snap = await process.serve()
        return snap, Exit.FENCED if engine.fenced is not None and not process.replaced else 0
    finally:
        root.removeHandler(output)
        logging.captureWarnings(False)
        output.close()


def run_engine(engine: Engine, *, log_path: Path | None, options: RunOptions | None = None) -> tuple[Snapshot | None, int]:
    return asyncio.run(serve_engine(engine, log_path=log_path, options=options))
