"""`warroom [PLAN]`: a console in this terminal, on the rollout's engine (started for it when none is alive)."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys

from warroom.client import EngineClient, Started, engine_argv, start_engine, start_unless_running
from warroom.core.identity import current_actor
from warroom.plan.model import Plan
from warroom.store import open_store
from warroom.store.paths import engine_log_path, state_path
from warroom.tui.app import WarroomApp


def run_console(plan: Plan | None, args: argparse.Namespace, engine_args: list[str] | None = None) -> int:
    """`warroom [PLAN]`: open the console on the rollout's engine; returns the process exit code.

    With no engine alive one is started: detached for a plan (it keeps guarding when the
    console closes), as this process's child for the built-in demo and for a drill
    (`engine_args`: the drill's engine), which end with the console.
    """
    from warroom.plan.demo import DEMO_NAME, demo_plan

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # Without a terminal the screen would spin unseen; the engine needs none.
        instead = ("warroom drill --headless PLAN" if getattr(args, "verb", None) == "drill"
                   else "warroom up PLAN (the engine, detached) or warroom run --headless PLAN")
        print(f"warroom: the console needs a terminal (stdin and stdout are not one here); "
              f"to drive a plan without a screen use `{instead}`", file=sys.stderr)
        return 2
    if plan is None:
        plan = demo_plan()
    path = state_path(plan, getattr(args, "state", None))
    readonly = bool(getattr(args, "readonly", False))
    demo = str(plan.path) == DEMO_NAME
    client = EngineClient(open_store(path), actor=current_actor(), readonly=readonly)

    def start_detached() -> str:
        """An engine for this plan (it keeps guarding when the console closes), unless one runs
        already (another console or verb started it meanwhile, a standby takes over); "" once one does."""
        running = start_unless_running(client, engine_argv(plan, path, speed=getattr(args, "speed", None)), engine_log_path(path))
        if running.view is None and not running.standby:
            return f"the engine did not start; see its log: {running.started.log if running.started else engine_log_path(path)}"
        return ""

    child: Started | None = None
    if engine_args is not None or demo:
        child = start_engine(engine_args or engine_argv(plan, path, speed=getattr(args, "speed", None)), engine_log_path(path), detached=False)
    elif not readonly and not client.engine(plan.poll_interval).alive:
        problem = start_detached()
        if problem:
            print(f"warroom: {problem}", file=sys.stderr)
            return 1
    if child is not None and client.wait_for_engine(lambda: child.process.poll() is not None) is None:
        print(f"warroom: the engine did not start; see its log: {child.log}", file=sys.stderr)
        _stop_child(child)
        return 1
    app = WarroomApp(client, theme=getattr(args, "theme", None) or plan.theme, keys=plan.keys, handle_signals=True,
                     engine_ends_with_console=child is not None, start_engine=None if child is not None else start_detached)
    first = client.snapshot()
    if first is not None:
        app.show(first)  # the first frame has data: no empty screen while the watcher starts
    try:
        # Mouse off: over SSH, native text selection (copying a journal line) matters more.
        code = app.run(mouse=False)
    finally:
        if child is not None:
            _stop_child(child)  # the demo's (or the drill's) engine ends with the console
    if demo:
        # The built-in demo lives in a fresh temporary folder: say where, or its journal is lost.
        print(f"warroom: the demo's journal: warroom journal --state {path}", file=sys.stderr)
    elif child is None:
        _say_who_guards(client, plan)
    return code or 0


def _stop_child(child: Started) -> None:
    if child.process.poll() is None:
        child.process.send_signal(signal.SIGTERM)
        try:
            child.process.wait(10)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


def _say_who_guards(client: EngineClient, plan: Plan) -> None:
    """On leaving while the rollout is in flight: the guardrails stay enforced, and by whom."""
    snap = client.snapshot()
    engine = client.engine(plan.poll_interval)
    if snap is None or not snap.in_flight:
        return
    if engine.alive:
        print(f"warroom: guardrails stay enforced by the engine, {engine.label()} (log {engine.log}); "
              f"stop it with: warroom down {plan.path}", file=sys.stderr)
    else:
        print(f"warroom: NO ENGINE — the rollout is {snap.state.label} and nothing enforces its guardrails; "
              f"start one with: warroom up {plan.path}", file=sys.stderr)
