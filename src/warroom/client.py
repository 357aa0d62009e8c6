"""The client side of the bus: how consoles and verbs see a rollout and ask its engine to act.

A client never builds an engine, never asks a source, never writes a flag. It reads the
snapshot the engine published and the journal's newest entries from the store, tells
whether an engine is alive, queues commands and follows what they do.

Who sends a command is proven, never declared. PostgreSQL writes the session's role beside
each command row. A SQLite file cannot say who wrote a row (anyone who may write the file can
write any name), so a command for an engine of this host goes over its local socket, where
the kernel names the sender, and the engine queues it in the store as that person; only a
command no engine here can take (none runs yet, it runs on another host, or it is frozen) is
queued by the client itself, and the engine journals its sender as "(declared, not proven)" —
save a rollback that starts its engine: that engine runs as its sender and is told which row is
theirs (`engine_argv`'s `rollback`). A rollback is never held back for want of proof. When the store cannot
carry it (a full disk: no command taken, no heartbeat renewed), a rollback or a pause goes to
an engine of this host over its local socket, and an engine that answers there counts as
alive (local_client.py). `start_engine`
starts one the way `warroom up` does; `start_unless_running` does so only when no engine of
the rollout runs, one process of this host at a time (racing verbs and consoles that each see
no engine alive must not each start one).

Whether an engine is alive and how old a snapshot is are judged on the store's clock
(`Store.now()`: the database's, or for SQLite the host's), never on this client's wall
clock: a console on a host whose clock is off by a minute sees what every other sees.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warroom import local_client
from warroom.core.identity import Actor
from warroom.core.journal_kinds import Kind
from warroom.core.local_wire import COMMANDS, SIGN_OFFS, LocalVerb
from warroom.core.snapshot import EngineView, JournalEntry, Snapshot
from warroom.core.verbs import Verb
from warroom.store.base import (
    KEEP_COMMANDS,
    MAX_COMMAND_TEXT,
    Command,
    LeaseInfo,
    Store,
    StoreUnwritable,
    Waiter,
    hostname,
    process_state,
)
from warroom.store.core import command_texts
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
    """Whether an engine is alive: a fresh heartbeat (two poll intervals, at least ALIVE_FLOOR, by
    `now` on the store's clock) and, when it runs on this host, a process that still exists."""
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
        self._live: dict[str, Any] | None = None  # the snapshot an engine answering only locally sees now

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

    def engine(self, poll_interval: float = 0.0, now: float | None = None) -> EngineView:
        """The engine as the store has it, judged at `now` on the store's clock (default: read it now)."""
        now = self.store.now() if now is None else now
        # A standby heartbeats every second like a driver; one silent longer was killed or lost its way here.
        standbys = [s.holder.label() for s in self.store.standbys() if now - s.heartbeat <= ALIVE_FLOOR]
        lease = self.store.lease()
        view = engine_view(lease, standbys, poll_interval, now)
        holder = lease.holder if lease is not None else None
        if not view.alive and holder is not None and holder.host == hostname() and not holder.provably_gone() \
                and process_state(holder.pid) != "T":  # a stopped (frozen) process cannot answer
            view = self._answering_locally(view)
        return view

    def _answering_locally(self, view: EngineView) -> EngineView:
        """An engine of this host whose heartbeat is late but that answers on its local socket (a
        full disk: it guards from memory) is alive; what it sees now is kept for `snapshot`."""
        answer = local_client.ping(self.store.ref)
        if answer is None or answer.holder != view.holder:
            return view
        self._live = answer.snapshot
        return dataclasses.replace(view, alive=True, local=answer.unrenewed or "its heartbeat is late")

    def snapshot(self) -> Snapshot | None:
        """The latest snapshot as published (or as an engine answering only locally sees it now),
        with the journal's tail, the engine as it is now, and who looks.

        Its `wall` is when it was published, told in this client's own wall clock (this host's
        time now, less its age on the store's clock), so everything that counts time since
        (the banner's clock, "published 5 s ago") is right whatever this host's clock says."""
        stored = self.store.snapshot()
        if stored is None:
            return None
        now = self.store.now()
        engine = self.engine(float(stored.body.get("poll_interval") or 0.0), now)
        body = self._live if engine.local and self._live else stored.body
        snap = Snapshot.from_json({**body, "journal": []})
        snap = dataclasses.replace(snap, journal=tuple(self.store.tail(JOURNAL_TAIL)),
                                   wall=time.time() - max(0.0, now - stored.published))
        return self._as_seen(snap, engine)

    def viewed(self, snap: Snapshot, now: float | None = None) -> Snapshot:
        """The snapshot with the engine's liveness as of now (it changes with no new snapshot: an engine dies)."""
        return self._as_seen(snap, self.engine(snap.poll_interval, now))

    def _as_seen(self, snap: Snapshot, engine: EngineView) -> Snapshot:
        return dataclasses.replace(snap, engine=engine, automation=engine.alive, driver=engine.holder if engine.alive else "",
                                   me=self.actor.label(), readonly=self.readonly)

    def watch(self) -> Waiter:
        return self.store.watch()

    # ------------------------------------------------------------ acting

    def send(self, verb: str, args: dict[str, Any] | None = None) -> int:
        """Queue a command (CommandTooLarge when it carries more than a command may); its id.
        A rollback is never refused for its words: a reason longer than a command may carry is cut.
        On a store that cannot prove its sender, queued by this host's engine for the person the kernel names."""
        args = dict(args or {})
        if verb == Verb.ROLLBACK:
            args = {k: v[:MAX_COMMAND_TEXT] if isinstance(v, str) else v for k, v in args.items()}
        if not self.store.proves_sender and self._engine_here():
            command_texts(verb, args, self.actor.to_json())  # too large: said here, as the store would
            try:
                queued = local_client.queue(self.store.ref, verb, args, self.actor)
            except local_client.NotQueued:
                if verb != Verb.ROLLBACK:
                    raise
                queued = None  # a rollback asked twice is run once: "already rolled back"
            if isinstance(queued, int):
                return queued
            # Not queued there (the store cannot take it, or the engine refused this user): the store says why below, and
            # a way back goes to the engine directly; no engine took it in time: queued here, as declared.
        return self.store.send_command(verb, args, self.actor.to_json())

    def _engine_here(self) -> bool:
        """Whether the driving engine runs on this host and can answer (a stopped process holds its socket silent)."""
        try:
            lease = self.store.lease()
        except StoreUnwritable:
            return False
        holder = lease.holder if lease is not None else None
        return holder is not None and holder.host == hostname() and not holder.provably_gone() and process_state(holder.pid) != "T"

    def send_or_ask(self, verb: str, args: dict, accepted: Callable[[str], None] | None = None) -> int | Asked:
        """Queue the command in the store (its id); a rollback or a pause the store cannot take,
        or whose engine answers only locally, is asked of this host's engine over its local
        socket instead (its outcome; `accepted` is told why once the engine took it).
        StoreUnwritable when neither way takes it."""
        if verb in {v.value for v in SIGN_OFFS} and not self.store.proves_sender:
            return self._sign_off_locally(verb, args, accepted)
        local = self.engine().local if verb in {v.value for v in COMMANDS} else ""
        if local:
            asked = ask_locally(self.store.ref, verb, args, self.actor, f"its heartbeat cannot be written: {local}", accepted)
            if asked is not None:
                return asked
        try:
            return self.send(verb, args)
        except StoreUnwritable as exc:
            asked = ask_locally(self.store.ref, verb, args, self.actor, str(exc), accepted) if verb in {v.value for v in COMMANDS} else None
            if asked is None:
                raise StoreUnwritable(f"{exc}; and no engine answers on this host's local socket") from None
            return asked

    def _sign_off_locally(self, verb: str, args: dict, accepted: Callable[[str], None] | None) -> Asked:
        """A sign-off where the store cannot say who sent it: to this host's engine, where the kernel can."""
        why = "a sign-off goes where the kernel proves who sends it: the engine's local socket on its host"
        asked = ask_locally(self.store.ref, verb, args, self.actor, why, accepted)
        if asked is not None:
            return asked
        message = (f"no engine of this rollout listens on this host ({hostname()}): with a SQLite state, {verb} on the host "
                   "the engine runs on (`warroom status PLAN` names it), where the kernel can say who you are")
        return Asked(Command(0, time.time(), verb, args, self.actor.to_json(), status="refused", message=message, finished=time.time()), why)

    def act(self, verb: str, args: dict, on_progress: Callable[[JournalEntry], None] | None = None) -> Command:
        """Send a command (`send_or_ask`) and follow it to its outcome (`wait`)."""
        sent = self.send_or_ask(verb, args)
        return sent.command if isinstance(sent, Asked) else self.wait(sent, on_progress)

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
                    if command is None:  # pruned: more than KEEP_COMMANDS finished after it while this waited
                        return Command(command_id, 0.0, "", {}, {}, "failed", f"its outcome is no longer kept (over {KEEP_COMMANDS} "
                                       "commands finished since): see the journal (warroom journal PLAN)")
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
                    view = self.engine()
                    alive = view.alive or bool(view.standbys)  # a standby takes a frozen or killed driver's command over once its lease runs out
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


@dataclass(frozen=True)
class Asked:
    """A command asked of the engine over its local socket, answered: the outcome as a command
    that was never in the store (id 0), and why the store was not the way."""

    command: Command
    why: str


def ask_locally(state_ref: str, verb: str, args: dict, actor: Actor, why: str,
                accepted: Callable[[str], None] | None = None) -> Asked | None:
    """Have the engine of this host run a rollback or a pause now, over its local socket (`accepted`
    is told why once it took it); None when no engine of the rollout answers there."""
    answer = local_client.command(state_ref, LocalVerb(verb), args, actor, why, None if accepted is None else lambda: accepted(why))
    if answer is None:
        return None
    return Asked(Command(0, time.time(), verb, args, actor.to_json(), status=answer.status, message=answer.message,
                         finished=time.time()), why)


def engine_argv(plan: Plan, state: StateRef, *, speed: Any = None, lease_ttl: float | None = None, replace: str = "",
                rollback: int | None = None) -> list[str]:
    """The arguments of `warroom engine` for this plan and state (the demo has no plan file: its state's folder is its);
    `rollback`: the command this process queued that the engine is started to run (it proves its sender)."""
    argv = [] if plan.path is None or not Path(str(plan.path)).is_file() else [str(Path(str(plan.path)).resolve())]
    argv += ["--state", state_argument(state)]
    if speed not in (None, 1, 1.0, "1"):
        argv += ["--speed", str(speed)]
    if lease_ttl is not None:
        argv += ["--lease-ttl", f"{lease_ttl:g}"]
    if replace:
        argv += ["--replace", replace]
    if rollback is not None:
        argv += ["--rollback", str(rollback)]
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


@contextlib.contextmanager
def one_start_at_a_time(log: Path) -> Iterator[None]:
    """Hold this host's lock on starting the rollout's engine (a file beside its log) for the block.

    Every process that may start an engine looks again under it: the first starts one and waits
    for it; the others then find it. A lock that cannot be had (no rights on the folder) is no
    reason not to start: the lease still keeps it to one driver."""
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log.with_name(log.stem + ".start.lock"), os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # the lock goes with it


@dataclass(frozen=True)
class Running:
    """What `start_unless_running` found or started."""

    view: EngineView | None  # the engine that drives now; None: none yet (a standby takes over, or the start failed)
    started: Started | None = None  # the engine this process started, if it did
    standby: str = ""  # the standby that takes over (none drives, its lease has not run out yet)


def start_unless_running(client: EngineClient, argv: list[str], log: Path) -> Running:
    """The rollout's engine: the one that drives, the standby about to take over, or — only when
    none runs — one started here (detached) and waited for until it drives or stands by."""
    with one_start_at_a_time(log):
        view = client.engine()
        if view.alive:
            return Running(view)
        if view.standbys:  # its driver is gone; the standby takes over once the lease runs out
            return Running(None, standby=view.standbys[0])
        started = start_engine(argv, log, detached=True)
        return Running(client.wait_for_engine(lambda: started.process.poll() is not None), started)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the parent stops it on a clean exit, which is the usual case
