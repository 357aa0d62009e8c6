"""`warroom [PLAN]`: a console in this terminal, on the rollout's engine (started for it when none is alive).

Attaching to an engine that already runs is the common case (a second console, a console
opened again after an SSH drop), and it is made fast: the plan file is only looked at to
find the store, and the plan is the one the engine saved there, not parsed and validated
again (`attach`). Only when no engine runs is the plan loaded in full, to start one.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warroom.client import EngineClient, Started, engine_argv, start_engine, start_unless_running
from warroom.core.identity import current_actor
from warroom.store import open_store
from warroom.store.base import StoreError
from warroom.store.paths import default_state_path, engine_log_path
from warroom.tui.app import WarroomApp

if TYPE_CHECKING:
    from warroom.plan.model import Plan

def needs_terminal(args: argparse.Namespace) -> bool:
    """Without a terminal the screen would spin unseen (the engine needs none): say so; True when refused."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        return False
    instead = ("warroom drill --headless PLAN" if getattr(args, "verb", None) == "drill"
               else "warroom up PLAN (the engine, detached) or warroom run --headless PLAN")
    print(f"warroom: the console needs a terminal (stdin and stdout are not one here); "
          f"to drive a plan without a screen use `{instead}`", file=sys.stderr)
    return True


def _kept_state(plan_file: Path, args: argparse.Namespace) -> Path | None:
    """The SQLite store a plan file names, found without validating the plan (None: not that simple)."""
    import yaml

    override = getattr(args, "state", None)
    if override:
        return None if "://" in override else Path(override).expanduser()
    try:
        data = yaml.load(plan_file.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        name, state = data["rollout"]["name"], data.get("state")
    except Exception:  # anything unusual: the full load says what is wrong, located
        return None
    if not isinstance(name, str) or (state is not None and (not isinstance(state, str) or "://" in state)):
        return None
    if state is None:
        return default_state_path(name)
    path = Path(state).expanduser()
    return path if path.is_absolute() else plan_file.resolve().parent / path


def attach(plan_file: str, args: argparse.Namespace) -> int | None:
    """`warroom PLAN` when PLAN's engine runs: the console on it, from the plan the engine saved in
    the store. None when it cannot (no engine alive, a PostgreSQL state, no plan kept yet): the
    caller loads the plan in full, and starts an engine if need be."""
    if getattr(args, "speed", None) is not None:
        return None
    path = _kept_state(Path(plan_file), args)
    if path is None or not path.is_file():
        return None
    try:
        store = open_store(path, create=False)
        kept = store.latest_plan()
    except StoreError:
        return None
    readonly = bool(getattr(args, "readonly", False))
    client = EngineClient(store, actor=current_actor(), readonly=readonly)
    poll = float((kept or {}).get("poll_interval") or 0.0)
    if kept is None or not (readonly or client.engine(poll).alive):
        store.close()
        return None
    if needs_terminal(args):
        return 2

    def start_detached(rollback: int | None) -> str:
        """An engine for this plan, loaded in full only now (`R` with no engine alive)."""
        from warroom.plan.load import load_plan
        from warroom.plan.yamlfile import PlanError

        try:
            plan = load_plan(plan_file)
        except PlanError as exc:
            return str(exc)
        return _start_detached(plan, path, client, getattr(args, "speed", None), rollback)

    return _run(client, theme=getattr(args, "theme", None) or kept.get("theme"), keys=kept.get("keys") or {},
                poll=poll, plan_file=plan_file, start=start_detached)


def run_console(plan: Plan | None, args: argparse.Namespace, engine_args: list[str] | None = None) -> int:
    """`warroom [PLAN]`: open the console on the rollout's engine; returns the process exit code.

    With no engine alive one is started: detached for a plan (it keeps guarding when the
    console closes), as this process's child for the built-in demo and for a drill
    (`engine_args`: the drill's engine), which end with the console.
    """
    from warroom.plan.demo import DEMO_NAME, demo_plan
    from warroom.store.paths import state_path

    if needs_terminal(args):
        return 2
    if plan is None:
        plan = demo_plan()
    path = state_path(plan, getattr(args, "state", None))
    readonly = bool(getattr(args, "readonly", False))
    demo = str(plan.path) == DEMO_NAME
    client = EngineClient(open_store(path), actor=current_actor(), readonly=readonly)
    speed = getattr(args, "speed", None)

    child: Started | None = None
    if engine_args is not None or demo:
        child = start_engine(engine_args or engine_argv(plan, path, speed=speed), engine_log_path(path), detached=False)
    elif not readonly and not client.engine(plan.poll_interval).alive:
        problem = _start_detached(plan, path, client, speed)
        if problem:
            print(f"warroom: {problem}", file=sys.stderr)
            return 1
    if child is not None and client.wait_for_engine(lambda: child.process.poll() is not None) is None:
        print(f"warroom: the engine did not start; see its log: {child.log}", file=sys.stderr)
        _stop_child(child)
        return 1
    try:
        code = _run(client, theme=getattr(args, "theme", None) or plan.theme, keys=plan.keys, poll=plan.poll_interval,
                    plan_file=str(plan.path), start=None if child is not None else lambda rollback: _start_detached(plan, path, client, speed, rollback),
                    child=child)
    finally:
        if child is not None:
            _stop_child(child)  # the demo's (or the drill's) engine ends with the console
    if demo:
        # The built-in demo lives in a fresh temporary folder: say where, or its journal is lost.
        print(f"warroom: the demo's journal: warroom journal --state {path}", file=sys.stderr)
    return code


def _run(client: EngineClient, *, theme: str | None, keys: dict[str, str], poll: float, plan_file: str,
         start: Callable[[int | None], str] | None, child: Started | None = None) -> int:
    app = WarroomApp(client, theme=theme, keys=keys, handle_signals=True, engine_ends_with_console=child is not None,
                     start_engine=start, plan_file=plan_file)
    first = client.snapshot()
    if first is not None:
        app.show(first)  # the first frame has data: no empty screen while the watcher starts
    # Mouse off: over SSH, native text selection (copying a journal line) matters more.
    code = app.run(mouse=False)
    if child is None:
        _say_who_guards(client, poll, plan_file)
    return code or 0


def _start_detached(plan: Plan, path: Any, client: EngineClient, speed: Any, rollback: int | None = None) -> str:
    """An engine for this plan (it keeps guarding when the console closes), unless one runs
    already (another console or verb started it meanwhile, a standby takes over); "" once one does.
    `rollback`: the command this console queued for it to run (the engine it starts proves who sent it)."""
    running = start_unless_running(client, engine_argv(plan, path, speed=speed, rollback=rollback), engine_log_path(path))
    if running.view is None and not running.standby:
        return f"the engine did not start; see its log: {running.started.log if running.started else engine_log_path(path)}"
    return ""


def _stop_child(child: Started) -> None:
    if child.process.poll() is None:
        child.process.send_signal(signal.SIGTERM)
        try:
            child.process.wait(10)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


def _say_who_guards(client: EngineClient, poll: float, plan_file: str) -> None:
    """On leaving: which engine keeps running (it acts on the flags) and how to stop it, whatever
    the state; or, with the launch in flight and none alive, that nothing guards it."""
    snap = client.snapshot()
    engine = client.engine(poll)
    if engine.alive:
        where = f"the engine, {engine.label()} (log {engine.log}),"
        guards = "guards the launch and acts on its flags" if snap is not None and snap.in_flight else "acts on the flags"
        print(f"warroom: {where} keeps running: it {guards}; stop it with: warroom down {plan_file}", file=sys.stderr)
    elif snap is not None and snap.in_flight:
        print(f"warroom: NO ENGINE — the rollout is {snap.state.label} and nothing enforces its guardrails; "
              f"start one with: warroom up {plan_file}", file=sys.stderr)
