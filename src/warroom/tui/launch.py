"""`warroom [PLAN]`: a console in this terminal, on an engine started for it."""

from __future__ import annotations

import argparse
import sys
from typing import Awaitable, Callable

from ..engine.build import build_engine, state_path
from ..engine.clock import make_clock
from ..engine.engine import Engine
from ..engine.runner import EngineRunner
from ..engine.snapshot import Snapshot
from ..plan import Plan
from .app import WarroomApp


def run_console(plan: Plan | None, args: argparse.Namespace,
                attach: Callable[[Engine], Callable[[Snapshot], Awaitable[None]]] | None = None) -> int:
    """`warroom [PLAN]`: open the console; returns the process exit code.

    `attach` hooks a part onto the engine before it starts (a drill) and gives back what
    runs between ticks.
    """
    from ..demo import DEMO_NAME, demo_plan

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # Without a terminal the screen would spin unseen while holding the automation lease.
        headless = "warroom drill --headless" if getattr(args, "verb", None) == "drill" else "warroom run --headless"
        print(f"warroom: the console needs a terminal (stdin and stdout are not one here); "
              f"to drive a plan without a screen use `{headless} PLAN`", file=sys.stderr)
        return 2
    if plan is None:
        plan = demo_plan()
    # --speed was checked when the arguments were parsed.
    clock = make_clock(getattr(args, "speed", None))
    engine = build_engine(plan, state=getattr(args, "state", None), clock=clock, readonly=bool(getattr(args, "readonly", False)))
    runner = EngineRunner(engine, after_tick=attach(engine) if attach else None)
    app = WarroomApp(runner, theme=getattr(args, "theme", None) or plan.theme, keys=plan.keys, handle_signals=True)
    # The first tick before the screen: a first frame with data beats an empty one, and a
    # tick competing with Textual's start-up for the GIL takes 10× longer. A simulator
    # ticks in ~10 ms; a slow source never holds the screen back more than half a second.
    runner.start()
    runner.published.wait(0.5)
    try:
        # Mouse off: over SSH, native text selection (copying a journal line) matters more.
        code = app.run(mouse=False)
    finally:
        # Closing the engine journals the stop and releases the automation lease.
        runner.stop()
    if str(plan.path) == DEMO_NAME:
        # The built-in demo lives in a fresh temporary folder: say where, or its journal is lost.
        print(f"warroom: the demo's journal: warroom journal --state {state_path(plan, getattr(args, 'state', None))}",
              file=sys.stderr)
    if app.failure:
        print(f"warroom: {app.failure}", file=sys.stderr)
        return 1
    return code or 0
