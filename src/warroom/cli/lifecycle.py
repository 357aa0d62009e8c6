"""`warroom engine | up | down | run --headless`: running, starting and stopping a rollout's engine.

`engine` runs it in the foreground (systemd, a container, tmux); `up` starts the same
command detached (its own session, output appended to the log next to the state) and
returns once its heartbeat is in the store — one start at a time on a host, so racing
starts leave one engine — and `up --replace` starts a new one that takes the lease straight
from the old (no moment without a driver); `down` asks the driver to stop through the store,
so it works from any host, and stops the standbys within its reach too (every engine of the
rollout, or with `--here` this host's), saying which remain and where; `run --headless` is a
foreground engine for a script, with `--until-done`, `--for`, fault files and virtual time.

Host and user names are outside text: every line here is printed without control characters.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from warroom.client import ALIVE_FLOOR, START_TIMEOUT, EngineClient, engine_argv, one_start_at_a_time, start_engine, start_unless_running
from warroom.core.clock import make_clock
from warroom.core.exit_codes import Exit
from warroom.core.identity import current_actor
from warroom.core.lines import say, status_line
from warroom.core.snapshot import State
from warroom.core.stopping import StopScope
from warroom.core.text import terminal_safe
from warroom.core.verbs import Verb
from warroom.engine.build import build_engine
from warroom.engine.lease import LEASE_TTL
from warroom.engine.process import RunOptions, run_engine
from warroom.plan.faults import load_faults
from warroom.plan.model import Plan
from warroom.store import open_store
from warroom.store.base import Holder, StoreMissing, hostname, process_started
from warroom.store.paths import StateRef, engine_log_path, state_path

VIRTUAL_DEFAULT_FOR = 24 * 3600.0  # virtual time never waits, so a run waiting on a human must end somewhere
DOWN_WAIT = 10.0  # seconds `down` waits for an engine to stop before it signals one on this host (and then again)


def _warn(text: str) -> None:
    print(terminal_safe(text), file=sys.stderr)


def _fresh_standbys(client: EngineClient) -> list[Holder]:
    """The standbys that heartbeat (one silent longer than a client counts alive is gone)."""
    now = client.store.now()  # heartbeats are on the store's clock, never this host's
    return [s.holder for s in client.store.standbys() if now - s.heartbeat <= ALIVE_FLOOR]


def cmd_engine(plan: Plan, args: argparse.Namespace, *, attach=None) -> int:
    """`warroom engine PLAN`: the engine in the foreground, until stopped."""
    path = state_path(plan, args.state)
    engine = build_engine(plan, state=path, clock=make_clock(args.speed), lease_ttl=args.lease_ttl or LEASE_TTL)
    options = RunOptions(after_tick=attach(engine) if attach else None, replace=getattr(args, "replace", "") or "",
                         rollback=getattr(args, "rollback", None))
    _, code = run_engine(engine, log_path=engine_log_path(path), options=options)
    return code


def cmd_run_headless(plan: Plan, args: argparse.Namespace) -> int:
    """`warroom run --headless PLAN`: a foreground engine that ends with --until-done or --for."""
    faults = load_faults(Path(args.faults)) if args.faults else ()  # a PlanError: located, exit 1
    clock = make_clock(args.speed)
    limit = args.for_ or (VIRTUAL_DEFAULT_FOR if clock.speed == float("inf") else None)
    path = state_path(plan, args.state)
    engine = build_engine(plan, state=path, clock=clock, extra_faults=faults)
    snap, code = run_engine(engine, log_path=engine_log_path(path),
                            options=RunOptions(until_done=args.until_done, run_for=limit, status_every=args.status_every))
    if snap is None:
        return code
    print(status_line(snap))  # status_line is terminal-safe
    return code or Exit.of_state(snap.state)


def cmd_up(plan: Plan, args: argparse.Namespace) -> int:
    """`warroom up PLAN [--replace]`: an engine for this rollout on this host, detached; say who when one runs already."""
    path = state_path(plan, args.state)
    client = EngineClient(open_store(path), actor=current_actor())
    if args.replace:
        return _replace(plan, path, client, args)
    log = engine_log_path(path)
    with one_start_at_a_time(log):  # three `up`s at once: the first starts it, the others find it
        view = client.engine()
        here = [s for s in _fresh_standbys(client) if s.host == hostname()]
        if view.alive and view.host == hostname():
            say(f"engine already driving: {view.holder} since {time.strftime('%H:%M:%S', time.localtime(view.since or 0))}"
                f" (epoch {view.epoch}, log {view.log})")
            return 0
        if here:
            say(f"an engine of this rollout stands by on this host already: {here[0].label()}"
                + (f"; engine {view.holder} drives" if view.alive else ""))
            return 0
        if view.alive:  # driven from another host: this one keeps a standby ready to take over
            return _up_standby(plan, path, client, view.holder, args)
        started = start_engine(engine_argv(plan, path, speed=args.speed, lease_ttl=args.lease_ttl), log, detached=True)
        driving = client.wait_for_engine(lambda: started.process.poll() is not None)
    if driving is None:
        tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
        _warn(f"warroom: the engine did not start; the end of its log ({started.log}):")
        for line in tail:
            _warn(f"  {line}")
        return 1
    if driving.pid != started.process.pid:
        say(f"another engine started meanwhile drives: {driving.holder}; the one started here waits as its standby (log {started.log})")
        return 0
    say(f"engine started: pid {driving.pid} on {driving.host}, log {driving.log or started.log}")
    return 0


def _up_standby(plan: Plan, path: StateRef, client: EngineClient, driver: str, args: argparse.Namespace) -> int:
    started = start_engine(engine_argv(plan, path, speed=args.speed, lease_ttl=args.lease_ttl), engine_log_path(path), detached=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and started.process.poll() is None:
        if any(s.holder.pid == started.process.pid and s.holder.host == hostname() for s in client.store.standbys()):
            say(f"engine {driver} drives; started a standby here: pid {started.process.pid} on {hostname()}, log {started.log}")
            return 0
        if client.engine().pid == started.process.pid:  # the driver went meanwhile: this one took over
            say(f"engine started: pid {started.process.pid} on {hostname()}, log {started.log}")
            return 0
        time.sleep(0.05)
    _warn(f"warroom: the standby engine did not start; see its log: {started.log}")
    return 1


def _replace(plan: Plan, path: StateRef, client: EngineClient, args: argparse.Namespace) -> int:
    """`up --replace`: the driver is told, then a new engine takes the lease straight from it (one
    write: never a moment without a driver); the old one, fenced by it, says so and exits."""
    lease = client.store.lease()
    if not client.engine().alive or lease is None or lease.holder is None:
        say("no engine drives this rollout: nothing to replace; starting one")
        args.replace = False
        return cmd_up(plan, args)
    old = lease.holder
    told = client.wait(client.send(Verb.SHUTDOWN, {"handover": True}), gone_after=1.0, timeout=DOWN_WAIT)
    if told.status != "done":
        _warn(f"warroom: engine {old.label()} did not agree to hand over ({told.status}"
              + (f": {told.message}" if told.message else "") + "); it goes on driving")
        return Exit.REFUSED
    log = engine_log_path(path)
    started = start_engine(engine_argv(plan, path, speed=args.speed, lease_ttl=args.lease_ttl, replace=old.id), log, detached=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and started.process.poll() is None:
        now = client.store.lease()
        if now is not None and now.holder is not None and now.holder.pid == started.process.pid and now.holder.host == hostname():
            gone = not _still_running(client, [old], DOWN_WAIT)
            say(f"engine replaced: pid {started.process.pid} on {hostname()} took the lease from {old.label()} with no gap "
                f"(epoch {lease.epoch} → {now.epoch}); log {log}" + ("" if gone else f"; {old.label()} has not exited yet"))
            return 0
        time.sleep(0.05)
    _warn(f"warroom: the new engine did not take the lease over: {old.label()} still drives; see {started.log}")
    return 1


def cmd_down(plan: Plan, args: argparse.Namespace) -> int:
    """`warroom down PLAN [--force] [--here]`: stop every engine of the rollout (or this host's), from any host.

    The driver is asked through the store and may refuse (a live launch, a rollback in flight);
    the standbys within reach stop with it (they read its stop in the journal), and one on this
    host that does not is signalled. Exit 0 when every engine it reached stopped, 1 when one
    remains (each named, with its host), 6 when the driver refused.
    """
    path = state_path(plan, args.state)
    try:
        client = EngineClient(open_store(path, create=False), actor=current_actor())
    except StoreMissing:
        say("no engine drives this rollout (no state yet)")
        return 0
    here, scope = hostname(), StopScope.HOST if args.here else StopScope.ROLLOUT
    view, lease = client.engine(), client.store.lease()
    driver = lease.holder if view.alive and lease is not None else None
    reached = [s for s in _fresh_standbys(client) if scope == StopScope.ROLLOUT or s.host == here]
    standbys = list(reached)
    told = driver is not None and (scope == StopScope.ROLLOUT or driver.host == here)
    if told:
        assert driver is not None
        code = _stop_driver(client, driver, scope, args.force)
        if code:
            return code
        reached.insert(0, driver)
    elif driver is not None:
        say(f"engine {driver.label()} drives from {driver.host}: not stopped (--here stops this host's engines only)")
    if not reached:
        say("no engine of this rollout runs" + (" on this host" if args.here else ""))
        return 0
    # The standbys read the driver's stop in the journal within a heartbeat; one on this host that
    # did not (or was never told: no driver) is signalled.
    for engine in _still_running(client, standbys, ALIVE_FLOOR if told else 0.0):
        if engine.host == here:
            _signal(engine)
    remaining = _still_running(client, reached, DOWN_WAIT)
    for engine in reached:
        if engine not in remaining:
            say(f"engine {engine.label()} stopped" + ("" if engine is driver else " (it stood by)"))
    now = client.engine()
    if now.alive and all(now.holder != e.label() for e in reached):
        say(f"engine {now.holder} drives now (it stood by on {now.host})")
    for engine in remaining:
        _warn(f"warroom: engine {engine.label()} still runs on {engine.host}"
              + ("" if engine.host == here else ": stop it there with `warroom down PLAN --here`"))
    return 1 if remaining else 0


def _stop_driver(client: EngineClient, driver: Holder, scope: StopScope, force: bool) -> int:
    """Ask the driver to stop (0), or say why it refused (Exit.REFUSED)."""
    snap = client.snapshot()
    if not force and snap is not None and snap.state == State.ROLLING_BACK and sys.stdin.isatty():
        answer = input(terminal_safe(f"a rollback is in flight; stop engine {driver.label()} anyway (the next engine finishes it)? [y/N] "))
        force = answer.strip().lower() in ("y", "yes")
    command = client.wait(client.send(Verb.SHUTDOWN, {"force": force, "scope": scope.value}), gone_after=1.0, timeout=DOWN_WAIT)
    if command.status == "refused":
        _warn(f"warroom: {command.message}")
        return Exit.REFUSED
    if _still_running(client, [driver], DOWN_WAIT) and driver.host == hostname():
        _signal(driver)  # it did not answer in time: the signal stops it the same way
        say(f"the engine did not answer within {DOWN_WAIT:g}s: sent pid {driver.pid} SIGTERM")
    return 0


def _signal(engine: Holder) -> None:
    """SIGTERM to an engine of this host, unless its pid is another process now."""
    if engine.started is not None and process_started(engine.pid) != engine.started:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):  # gone, or another user's: it is named among those that remain
        os.kill(engine.pid, signal.SIGTERM)


def _still_running(client: EngineClient, engines: list[Holder], timeout: float) -> list[Holder]:
    """Until none of `engines` holds the lease or stands by; those that still do after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        lease = client.store.lease()
        standing = {s.id for s in _fresh_standbys(client)}
        left = [e for e in engines if not e.provably_gone() and (
            e.id in standing or lease is not None and lease.holder is not None and lease.holder.id == e.id)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def start_for_rollback(plan: Plan, path: StateRef, client: EngineClient, rollback: int | None) -> bool:
    """Rolling back must never be refused for lack of an engine: start one (detached) unless one
    runs already (racing rollbacks, a standby about to take over), and say so. The engine is told
    which queued command is this process's `rollback`: it runs as this person, so it can prove who sent it."""
    running = start_unless_running(client, engine_argv(plan, path, rollback=rollback), engine_log_path(path))
    view, started = running.view, running.started
    if started is None:
        _warn(f"warroom: no engine drove this rollout when asked; {running.standby or view and view.holder} "
              + ("takes over once the lease runs out, and rolls back" if running.standby else "drives now"))
        return True
    if view is None:
        _warn(f"warroom: no engine drives this rollout and the one started to roll back did not start; see {started.log}")
        return False
    if view.pid == started.process.pid:
        _warn(f"warroom: no engine drove this rollout: started one to roll back (pid {view.pid} on {view.host}, log {view.log}); "
              f"it keeps guarding: stop it with `warroom down {plan.path}`")
    else:
        _warn(f"warroom: no engine drove this rollout: started one to roll back; another started meanwhile drives "
              f"({view.holder}), and the one started here waits as its standby (log {started.log})")
    return True

