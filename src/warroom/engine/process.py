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
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from warroom.core.exit_codes import Exit
from warroom.core.identity import Actor
from warroom.core.lines import entry_line, stamp, status_line
from warroom.core.snapshot import JournalEntry, Snapshot
from warroom.core.units import format_duration
from warroom.engine.commands import CommandLoop
from warroom.engine.engine import Engine
from warroom.engine.executor import CommandError
from warroom.store.base import Command, Fenced, LeaseInfo

DRAIN = 2.0  # seconds commands in flight get to write their outcomes on a clean stop
STEP_GRACE = 15.0  # seconds a step up in flight gets to end on a clean stop (a rollback gets as long as it takes)


class Output(logging.Handler):
    """Every line the engine says: into its log file always, onto the terminal while there is one.

    A write that fails (a full disk, a terminal gone with its SSH session) silences that
    destination; it never stops the engine.
    """

    def __init__(self, log_path: Path | None, terminal: TextIO | None):
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))
        self.file: TextIO | None = None
        if log_path is not None:
            try:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                self.file = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115  (open for the engine's life)
            except OSError:
                self.file = None
        # `warroom up` points the engine's stdout at its log file: one copy of each line is enough.
        self.terminal = None if terminal is None or self._same_file(terminal, log_path) else terminal

    @staticmethod
    def _same_file(stream: TextIO, path: Path | None) -> bool:
        if path is None:
            return False
        try:
            mine, theirs = os.fstat(stream.fileno()), os.stat(path)
        except (OSError, ValueError):
            return False
        return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)

    def line(self, text: str) -> None:
        for name in ("file", "terminal"):
            stream = getattr(self, name)
            if stream is None:
                continue
            try:
                stream.write(text + "\n")
                stream.flush()
            except (OSError, ValueError):
                if name == "terminal":
                    self.terminal = None  # the terminal is gone (SSH dropped): the log file goes on
                # a full disk: the line is lost, the engine goes on guarding

    def emit(self, record: logging.LogRecord) -> None:
        self.line(f"{stamp(record.created)} {'engine':<18} {record.levelname.lower()}: {self.format(record)}")

    def close(self) -> None:
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
        super().close()


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
        """`warroom down`: stop, unless a rollback is in flight and nobody said --force."""
        if self.engine.rollout.rollback_in_flight and not command.args.get("force"):
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
            if not await engine.lease.wait(self.stop, self._standby):
                return None
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

    def _standby(self, lease: LeaseInfo) -> None:
        assert lease.holder is not None
        self._say(f"standby: engine {lease.holder.label()} drives this rollout (epoch {lease.epoch}); "
                  "waiting to take over if it stops or its lease runs out")


async def serve_engine(engine: Engine, *, log_path: Path | None, options: RunOptions | None = None,
                       terminal: TextIO | None = None) -> tuple[Snapshot | None, int]:
    """Run the engine process to its end: (its last snapshot, exit code: 0, or Exit.FENCED)."""
    output = Output(log_path, terminal if terminal is not None else sys.stdout)
    root = logging.getLogger("warroom")
    root.addHandler(output)
    root.setLevel(logging.INFO)
    logging.raiseExceptions = False  # a log line that cannot be written must never take the engine down
    try:
        snap = await EngineProcess(engine, output, options or RunOptions()).serve()
        return snap, Exit.FENCED if engine.fenced is not None else 0
    finally:
        root.removeHandler(output)
        output.close()


def run_engine(engine: Engine, *, log_path: Path | None, options: RunOptions | None = None) -> tuple[Snapshot | None, int]:
    return asyncio.run(serve_engine(engine, log_path=log_path, options=options))
