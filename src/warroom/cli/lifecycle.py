"""`warroom engine | up | down | run --headless`: running, starting and stopping a rollout's engine.

`engine` runs it in the foreground (systemd, a container, tmux); `up` starts the same
command detached (its own session, output appended to the log next to the state) and
returns once its heartbeat is in the store; `down` asks it to stop through the store, so
it works from any host; `run --headless` is a foreground engine for a script, with
`--until-done`, `--for`, fault files and virtual time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from warroom.client import START_TIMEOUT, EngineClient, engine_argv, start_engine
from warroom.core.clock import make_clock
from warroom.core.exit_codes import Exit
from warroom.core.identity import current_actor
from warroom.core.lines import status_line
from warroom.core.snapshot import State
from warroom.engine.build import build_engine
from warroom.engine.lease import LEASE_TTL
from warroom.engine.process import RunOptions, run_engine
from warroom.plan.faults import load_faults
from warroom.plan.model import Plan
from warroom.store import open_store
from warroom.store.base import StoreMissing, hostname
from warroom.store.paths import StateRef, engine_log_path, state_path

VIRTUAL_DEFAULT_FOR = 24 * 3600.0  # virtual time never waits, so a run waiting on a human must end somewhere
DOWN_WAIT = 10.0  # seconds `down` waits for the lease to be released before it signals a local engine


def cmd_engine(plan: Plan, args: argparse.Namespace, *, attach=None) -> int:
    """`warroom engine PLAN`: the engine in the foreground, until stopped."""
    path = state_path(plan, args.state)
    engine = build_engine(plan, state=path, clock=make_clock(args.speed), lease_ttl=args.lease_ttl or LEASE_TTL)
    options = RunOptions(after_tick=attach(engine) if attach else None)
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
    print(status_line(snap))
    return code or Exit.of_state(snap.state)


def cmd_up(plan: Plan, args: argparse.Namespace) -> int:
    """`warroom up PLAN`: an engine for this rollout, detached; say who when one is alive already."""
    path = state_path(plan, args.state)
    client = EngineClient(open_store(path), actor=current_actor())
    view = client.engine()
    if view.alive and (view.host == hostname() or any(f"@{hostname()} pid " in s for s in view.standbys)):
        print(f"engine already driving: {view.holder} since {time.strftime('%H:%M:%S', time.localtime(view.since or 0))}"
              f" (epoch {view.epoch}, log {view.log})")
        return 0
    if view.alive:  # driven from another host: this one keeps a standby ready to take over
        return _up_standby(plan, path, client, view.holder, args)
    started = start_engine(engine_argv(plan, path, speed=args.speed, lease_ttl=args.lease_ttl), engine_log_path(path), detached=True)
    driving = client.wait_for_engine(lambda: started.process.poll() is not None)
    if driving is None:
        tail = engine_log_path(path).read_text(errors="replace").splitlines()[-15:] if engine_log_path(path).exists() else []
        print("warroom: the engine did not start; the end of its log (" + str(started.log) + "):\n  " + "\n  ".join(tail), file=sys.stderr)
        return 1
    if driving.pid != started.process.pid:
        print(f"another engine started meanwhile drives: {driving.holder}; the one started here waits as its standby (log {started.log})")
        return 0
    print(f"engine started: pid {driving.pid} on {driving.host}, log {driving.log or started.log}")
    return 0


def _up_standby(plan: Plan, path: StateRef, client: EngineClient, driver: str, args: argparse.Namespace) -> int:
    started = start_engine(engine_argv(plan, path, speed=args.speed, lease_ttl=args.lease_ttl), engine_log_path(path), detached=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and started.process.poll() is None:
        if any(s.holder.pid == started.process.pid and s.holder.host == hostname() for s in client.store.standbys()):
            print(f"engine {driver} drives; started a standby here: pid {started.process.pid} on {hostname()}, log {started.log}")
            return 0
        if client.engine().pid == started.process.pid:  # the driver went meanwhile: this one took over
            print(f"engine started: pid {started.process.pid} on {hostname()}, log {started.log}")
            return 0
        time.sleep(0.05)
    print(f"warroom: the standby engine did not start; see its log: {started.log}", file=sys.stderr)
    return 1


def cmd_down(plan: Plan, args: argparse.Namespace) -> int:
    """`warroom down PLAN [--force]`: ask the engine to stop through the store (from any host)."""
    path = state_path(plan, args.state)
    try:
        client = EngineClient(open_store(path, create=False), actor=current_actor())
    except StoreMissing:
        print("no engine drives this rollout (no state yet)")
        return 0
    view = client.engine()
    if not view.alive:
        print("no engine drives this rollout")
        return 0
    force = args.force
    snap = client.snapshot()
    if not force and snap is not None and snap.state == State.ROLLING_BACK and sys.stdin.isatty():
        answer = input(f"a rollback is in flight; stop engine {view.holder} anyway (the next engine finishes it)? [y/N] ")
        force = answer.strip().lower() in ("y", "yes")
    command = client.wait(client.send("shutdown", {"force": force}), gone_after=1.0, timeout=DOWN_WAIT)
    if command.status == "refused":
        print(f"warroom: {command.message}", file=sys.stderr)
        return Exit.REFUSED
    if not _released(client, view.pid, DOWN_WAIT) and view.host == hostname():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(view.pid, signal.SIGTERM)  # it did not answer in time: the signal stops it the same way
        print(f"the engine did not answer within {DOWN_WAIT:g}s: sent pid {view.pid} SIGTERM")
        _released(client, view.pid, DOWN_WAIT)
    print(f"engine {view.holder} stopped" if _released(client, view.pid, 0) else f"warroom: engine {view.holder} still holds the lease")
    return 0


def _released(client: EngineClient, pid: int, timeout: float) -> bool:
    """Until the engine with `pid` no longer holds the lease (released, or another took it)."""
    deadline = time.monotonic() + timeout
    while True:
        lease = client.store.lease()
        if lease is None or lease.holder is None or lease.holder.pid != pid:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def start_for_rollback(plan: Plan, path: StateRef, client: EngineClient) -> bool:
    """Rolling back must never be refused for lack of an engine: start one (detached), say so."""
    started = start_engine(engine_argv(plan, path), engine_log_path(path), detached=True)
    view = client.wait_for_engine(lambda: started.process.poll() is not None)
    if view is None:
        print(f"warroom: no engine drives this rollout and the one started to roll back did not start; see {started.log}", file=sys.stderr)
        return False
    if view.pid == started.process.pid:
        print(f"warroom: no engine drove this rollout: started one to roll back (pid {view.pid} on {view.host}, log {view.log}); "
              "it keeps guarding: stop it with `warroom down PLAN`", file=sys.stderr)
    else:
        print(f"warroom: no engine drove this rollout: started one to roll back; another started meanwhile drives "
              f"({view.holder}), and the one started here waits as its standby (log {started.log})", file=sys.stderr)
    return True

