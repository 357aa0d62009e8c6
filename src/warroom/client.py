"""The client side of the bus: how consoles and verbs see a rollout and ask its engine to act.

A client never builds an engine, never asks a source, never writes a flag. It reads the
snapshot the engine published and the journal's newest entries from the store, tells
whether an engine is alive, queues commands and follows what they do. `start_engine`
starts one the way `warroom up` does.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warroom.core.identity import Actor
from warroom.core.journal_kinds import Kind
from warroom.core.snapshot import EngineView, JournalEntry, Snapshot
from warroom.store.base import Command, LeaseInfo, Store, StoreUnwritable, Waiter
from warroom.store.paths import StateRef, state_argument

if TYPE_CHECKING:
    from warroom.plan.model import Plan

JOURNAL_TAIL = 60
ALIVE_FLOOR = 3.0  # seconds: the engine heartbeats every second, so three missed ones mean it is gone
START_TIMEOUT = 30.0  # seconds a started engine gets to show its heartbeat
AWAY_RETRY = 0.5  # seconds between two looks at a store that cannot be reached
# What a verb prints while it waits: the steps of its action, and what a newly started engine finished.
PROGRESS = (Kind.ROLLBACK_ATTEMPT, Kind.STEP_ATTEMPT, Kind.ROLLBACK_CONFIRMED, Kind.ROLLBACK_STEP,
            Kind.ROLLBACK_RESUME, Kind.ROLLBACK_REASSERT)


def _speed(text: str) -> float:
    try:
        return float("inf") if text == "max" else max(float(text), 1e-9)
    except ValueError:
        return 1.0


def engine_view(lease: LeaseInfo | None, standbys: list[str], poll_interval: float, now: float) -> EngineView:
    """Whether an engine is alive: a fresh heartbeat (two poll intervals of wall time, at least
    ALIVE_FLOOR) and, when it runs on this host, a process that still exists."""
    if lease is None or lease.holder is None:
        return EngineView(False, standbys=tuple(standbys))
    holder = lease.holder
    age = max(0.0, now - lease.heartbeat)
    fresh = age <= max(ALIVE_FLOOR, 2 * poll_interval / _speed(lease.speed))
    return EngineView(fresh and not holder.provably_gone(), holder.label(), holder.host, holder.pid, lease.acquired, age,
                      lease.epoch, tuple(standbys), lease.log)


class EngineClient:
    def __init__(self, store: Store, *, actor: Actor, readonly: bool = False):
        self.store = store
        self.actor = actor
        self.readonly = readonly
        self._seen: tuple[int, int] = (-1, -1)  # (snapshot seq, journal seq) last read

    def news(self) -> bool:
        """Whether a snapshot or a journal entry came since the last call (cheap: two small reads).

        The store changes every second without news (the engine's heartbeat): a console then
        only looks again whether the engine is alive, instead of rebuilding the whole picture.
        """
        stored = self.store.snapshot_seq()
        seen = (stored, self.store.last_seq())
        news, self._seen = seen != self._seen, seen
        return news

    # ------------------------------------------------------------ looking

    def engine(self, poll_interval: float = 0.0) -> EngineView:
        now = time.time()
        # A standby heartbeats every second like a driver; one silent longer was killed or lost its way here.
        standbys = [s.holder.label() for s in self.store.standbys() if now - s.heartbeat <= ALIVE_FLOOR]
        return engine_view(self.store.lease(), standbys, poll_interval, now)

    def snapshot(self) -> Snapshot | None:
        """The latest snapshot as published, with the journal's tail, the engine as it is now, and who looks."""
        stored = self.store.snapshot()
        if stored is None:
            return None
        snap = Snapshot.from_json({**stored.body, "journal": []})
        return self.viewed(dataclasses.replace(snap, journal=tuple(self.store.tail(JOURNAL_TAIL))))

    def viewed(self, snap: Snapshot) -> Snapshot:
        """The snapshot with the engine's liveness as of now (it changes with no new snapshot: an engine dies)."""
        engine = self.engine(snap.poll_interval)
        return dataclasses.replace(snap, engine=engine, automation=engine.alive, driver=engine.holder if engine.alive else "",
                                   me=self.actor.label(), readonly=self.readonly)

    def watch(self) -> Waiter:
        return self.store.watch()

    # ------------------------------------------------------------ acting

    def send(self, verb: str, args: dict | None = None) -> int:
        return self.store.send_command(verb, args or {}, self.actor.to_json(), time.time())

    def wait(self, command_id: int, on_progress: Callable[[JournalEntry], None] | None = None, *, since: int | None = None,
             gone_after: float = 10.0, timeout: float | None = None,
             on_away: Callable[[StoreUnwritable, int], None] | None = None) -> Command:
        """Until the command has its outcome, telling each step of its action (and any recovery) as it is journaled.

        Returns the command; when no engine is alive for `gone_after` seconds meanwhile (or
        `timeout` passed), the command as it stands (not done): the caller says so. A store that
        cannot be reached for a while (a database restarting) is waited out, told to `on_away`
        with the number of tries: the engine goes on meanwhile, and the outcome is in the store.
        """
        seen = self.store.last_seq() if since is None else since
        waiter = self.store.watch()
        dead_since: float | None = None
        deadline = None if timeout is None else time.monotonic() + timeout
        followed: set[str] = set()  # its action, and a rollback an engine resumed or reasserted meanwhile
        away = 0  # reads in a row that found the store away
        command: Command | None = None
        try:
            while True:
                try:
                    command = self.store.command(command_id)
                    assert command is not None
                    if command.action_id:
                        followed.add(command.action_id)
                    for entry in self.store.entries(after=seen):
                        seen = entry.seq
                        if entry.kind in (Kind.ROLLBACK_RESUME, Kind.ROLLBACK_REASSERT) and entry.action_id:
                            followed.add(entry.action_id)
                        if on_progress is not None and entry.kind in PROGRESS and entry.action_id in followed:
                            on_progress(entry)
                    if command.done:
                        return command
                    alive = self.engine().alive
                    away = 0
                except StoreUnwritable as exc:
                    away += 1
                    if on_away is not None:
                        on_away(exc, away)
                    if command is None and deadline is not None and time.monotonic() > deadline:
                        raise
                    alive = True  # nobody can tell while the store is away: an engine is not given up for it
                assert command is not None
                if deadline is not None and time.monotonic() > deadline:
                    return command
                if alive:
                    dead_since = None
                elif dead_since is None:
                    dead_since = time.monotonic()
                elif time.monotonic() - dead_since > gone_after:
                    return command
                if away:
                    time.sleep(AWAY_RETRY)
                else:
                    waiter.wait(1.0)
        finally:
            waiter.close()

    def wait_for_engine(self, exited: Callable[[], bool], timeout: float = START_TIMEOUT) -> EngineView | None:
        """Until an engine drives this rollout (the one just started, or one started meanwhile by
        someone else: then ours waits as its standby); None when ours exited first and none drives."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view = self.engine()
            if view.alive:
                return view
            if exited():
                return None
            time.sleep(0.05)
        return None


def engine_argv(plan: Plan, state: StateRef, *, speed: Any = None, lease_ttl: float | None = None) -> list[str]:
    """The arguments of `warroom engine` for this plan and state (the demo has no plan file: its state's folder is its)."""
    argv = [] if plan.path is None or not Path(str(plan.path)).is_file() else [str(Path(str(plan.path)).resolve())]
    argv += ["--state", state_argument(state)]
    if speed not in (None, 1, 1.0, "1"):
        argv += ["--speed", str(speed)]
    if lease_ttl is not None:
        argv += ["--lease-ttl", f"{lease_ttl:g}"]
    return argv


@dataclass(frozen=True)
class Started:
    process: subprocess.Popen
    log: Path


def start_engine(argv: list[str], log: Path, *, detached: bool) -> Started:
    """Start `warroom engine …` (argv after `warroom`), its output appended to `log`.

    Detached (`up`, the console on a plan): a session of its own, so it outlives the
    terminal and SSH session that started it. Not detached (the demo, a console drill):
    it ends with the process that started it, even when that one is killed.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        return Started(subprocess.Popen(
            [sys.executable, "-m", "warroom", "engine", *argv], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=detached, preexec_fn=None if detached else _die_with_parent, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        ), log)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the parent stops it on a clean exit, which is the usual case
