"""`warroom run --headless`: drive a plan with plain timestamped log lines."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Awaitable, Callable, TextIO

from .engine.engine import Engine
from .engine.snapshot import JournalEntry, PaneView, Snapshot, State
from .plan import format_duration
from .text import terminal_safe
from .units import format_value

TERMINAL = (State.COMPLETE, State.ROLLED_BACK)


def stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def entry_line(entry: JournalEntry) -> str:
    # A journal message quotes plans, scenarios and servers: data, never terminal control.
    return terminal_safe(f"{stamp(entry.ts)} {entry.kind:<18} {entry.message}  [{entry.actor}]")


def _pane_text(pane: PaneView) -> str:
    text = f"{pane.id}={format_value(pane.value, pane.unit)}"
    if pane.status == "stale" and pane.age is not None:
        return f"{text}(stale {format_duration(pane.age)})"  # how old the number kept on screen is
    return text if pane.status == "ok" else f"{text}({pane.status})"


def status_line(snap: Snapshot) -> str:
    phase = f"phase {snap.phase.index}/{snap.phase_count} {snap.phase.name}" if snap.phase else f"phase 0/{snap.phase_count}"
    panes = " ".join(_pane_text(p) for p in snap.panes)
    return terminal_safe(f"{stamp(snap.now)} {'status':<18} {snap.state.label} {phase} | {panes}")


async def run_headless(
    engine: Engine,
    *,
    until_done: bool = False,
    out: TextIO = sys.stdout,
    status_every: float = 60.0,
    run_for: float | None = None,
    after_tick: Callable[[Snapshot], Awaitable[None]] | None = None,
) -> Snapshot:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)

    # Follow the journal, not only this process: a step, tick or pause from a CLI verb in
    # another terminal shows here too, in journal order, each entry once.
    printed = [engine.store.last_seq()]

    def follow(_: object = None) -> None:
        for entry in engine.store.entries(after=printed[0]):
            print(entry_line(entry), file=out, flush=True)
            printed[0] = entry.seq

    last_status = [float("-inf")]
    started = engine.clock.now()

    def on_snapshot(snap: Snapshot) -> None:
        follow()
        if snap.now - last_status[0] >= status_every:
            last_status[0] = snap.now
            print(status_line(snap), file=out, flush=True)
        if until_done and snap.state in TERMINAL and not snap.action and not engine.tasks:
            stop.set()
        if run_for is not None and snap.now - started >= run_for and not stop.is_set():
            print(f"{stamp(snap.now)} {'stop':<18} ran for {format_duration(run_for)} of clock time (--for)", file=out, flush=True)
            stop.set()

    engine.entry_listeners.append(follow)
    engine.snapshot_listeners.append(on_snapshot)
    try:
        await engine.start()
        await engine.run(stop, after_tick)
        await engine.wait_idle()
        return engine.publish()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await engine.close()
