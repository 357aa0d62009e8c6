"""The always-on engine process: one per rollout, whatever the terminals do.

`warroom engine PLAN` (foreground: systemd, a container, tmux), `warroom up PLAN` (the
same, detached) and `warroom run --headless PLAN` all run this. It takes the rollout's
lease or waits as a standby until it can; then it ticks, runs the commands clients queue
in the store, and publishes snapshots until told to stop.

- SIGTERM / SIGINT stop it cleanly (journaled, lease released). While a rollback is in
  flight it says so and finishes the rollback first; a second signal stops it at once
  (the rollback stays pending in the write-ahead journal: the next engine finishes it).
- SIGHUP is ignored: an engine started by hand in an SSH shell keeps guarding when the
  session drops. Its terminal may be gone, so output never crashes it: every line goes to
  the log file next to the state, and to the terminal only while it takes them.
- Taken over while frozen (fenced): it stops acting at once, says so, and exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from warroom.core.identity import Actor
from warroom.core.lines import entry_line, stamp, status_line
from warroom.core.snapshot import Snapshot, State
from warroom.core.units import format_duration
from warroom.engine.commands import CommandLoop
from warroom.engine.engine import Engine
from warroom.engine.executor import CommandError
from warroom.engine.output import Output
from warroom.store.base import Command, Fenced, LeaseInfo

TERMINAL = (State.COMPLETE, State.ROLLED_BACK)
DRAIN = 2.0  # seconds commands in flight get to write their outcomes on a clean stop
STEP_GRACE = 15.0  # seconds a step up in flight gets to end on a clean stop (a rollback gets as long as it takes)
EXIT_FENCED = 10


@dataclass
class RunOptions:
    until_done: bool = False  # stop once COMPLETE or ROLLED BACK with nothing in flight
    run_for: float | None = None  # stop after this much clock time
    status_every: float = 60.0  # clock seconds between status lines
    after_tick: Callable[[Snapshot], Awaitable[None]] | None = None  # a drill's part between ticks


class EngineProcess:
    def __init__(self, engine: Engine, output: Output, options: RunOptions):
        self.engine = engine
        self.out = output
        self.options = options
        self.stop = asyncio.Event()
        self.signals = 0
        self.commands = CommandLoop(engine, self._shutdown)
        self._last_status = float("-inf")
        self._started = engine.clock.now()
        self._driver = ""  # who drives while this one stands by

    # ------------------------------------------------------------ what it says

    def _entry(self, entry) -> None:
        self.out.line(entry_line(entry))

    def _snapshot(self, snap: Snapshot) -> None:
        options = self.options
        if snap.now - self._last_status >= options.status_every:
            self._last_status = snap.now
            self.out.line(status_line(snap))
        if options.until_done and snap.state in TERMINAL and not snap.action and not self.engine.tasks:
            self.stop.set()
        if options.run_for is not None and snap.now - self._started >= options.run_for and not self.stop.is_set():
            self.out.line(f"{stamp(snap.now)} {'stop':<18} ran for {format_duration(options.run_for)} of clock time (--for)")
            self.stop.set()

    def _say(self, text: str) -> None:
        self.out.line(f"{stamp(self.engine.clock.now())} {'engine':<18} {text}")

    # ------------------------------------------------------------ stopping

    def _rollback_in_flight(self) -> bool:
        state = self.engine.rollout
        return state.status == State.ROLLING_BACK or (state.action is not None and state.action.kind == "rollback")

    def _signal(self, signum: int) -> None:
        self.signals += 1
        name = signal.Signals(signum).name
        if self.signals > 1:
            if self.engine.tasks:
                self._say(f"{name} again: stopping now; what is in flight stays pending in the journal and the next engine finishes it")
            self.stop.set()
            return
        if self._rollback_in_flight():
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
        """`warroom down`: stop, unless a rollback is in flight and nobody said --force."""
        if self._rollback_in_flight() and not command.args.get("force"):
            raise CommandError("a rollback is in flight: stopping the engine now would leave it to the next one; "
                               "wait for it, or `warroom down PLAN --force`")
        self._say(f"stopping: asked by {actor.label()} (warroom down)")
        self.stop.set()
        return f"stopping engine {self.engine.holder}"

    # ------------------------------------------------------------ the life of it

    async def serve(self) -> Snapshot | None:
        """Standby until the lease is ours, then drive until stopped; the last snapshot (None: never drove)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._signal, sig)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # an SSH session ending is no reason to stop guarding
        engine = self.engine
        try:
            limit = asyncio.ensure_future(self._run_for_as_standby()) if self.options.run_for is not None else None
            try:
                if not await engine.lease.wait(self.stop, self._standby):
                    return None
            finally:
                if limit is not None:
                    limit.cancel()
            engine.entry_listeners.append(self._entry)
            engine.snapshot_listeners.append(self._snapshot)
            engine.fence_listeners.append(lambda _: self.stop.set())
            try:
                await engine.start()
            except Fenced as exc:
                engine.on_fenced(exc)
            if engine.fenced is None:
                serving = asyncio.ensure_future(self.commands.serve(self.stop))
                await engine.run(self.stop, self.options.after_tick)  # until stopped or fenced
                await self.commands.drain(DRAIN)
                serving.cancel()
            if engine.fenced is not None:
                self._say(f"FENCED: {engine.fenced}. This engine wrote nothing after it; it exits")
            reason = "signal" if self.signals else ""
            snap = engine.snapshot
            await engine.close(reason)
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
    """Run the engine process to its end: (its last snapshot, exit code: 0, or EXIT_FENCED)."""
    output = Output(log_path, terminal if terminal is not None else sys.stdout)
    # On the root logger: a library's warning (or asyncio's) must not go to stderr by itself,
    # where an unread terminal would block the engine; warnings likewise.
    root, ours = logging.getLogger(), logging.getLogger("warroom")
    root.addHandler(output)
    ours.setLevel(logging.INFO)
    logging.captureWarnings(True)
    logging.raiseExceptions = False  # a log line that cannot be written must never take the engine down
    try:
        snap = await EngineProcess(engine, output, options or RunOptions()).serve()
        return snap, EXIT_FENCED if engine.fenced is not None else 0
    finally:
        root.removeHandler(output)
        logging.captureWarnings(False)
        output.close()


def run_engine(engine: Engine, **kw) -> tuple[Snapshot | None, int]:
    return asyncio.run(serve_engine(engine, **kw))
