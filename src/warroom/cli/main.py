"""Command-line verbs: each turns into engine calls; no rollout logic lives here.

This module picks the verb's handler: the verbs that read are in cli/reading.py, those that send
a command in cli/acting.py, the parser in cli/parser.py; the lifecycle (up, down, engine, run
--headless), check, freeze/thaw, page/update and secret verbs in their own modules, imported
when run. Exit codes: core/exit_codes.py (and the README).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from warroom.cli.acting import actor_cmd
from warroom.cli.parser import console_parser, help_text, verb_parser
from warroom.core.exit_codes import Exit
from warroom.core.secrets import SecretError, redact
from warroom.core.text import terminal_safe
from warroom.core.verbs import Verb
from warroom.plan.yamlfile import PlanError
from warroom.store import StoreError
from warroom.store.base import CommandTooLarge

if TYPE_CHECKING:  # the plan's model (pydantic) is imported where a plan is loaded: never by a console attaching
    from warroom.plan.model import Plan

VERBS = ("check", "run", "drill", "report", "status", "step", "pause", "resume", "rollback", "retry", "tick", "ack", "journal",
         "engine", "approve", "reject", "verify", "up", "down", "freeze", "thaw", "secret", "simulate", "page", "update")


def _refused_fast_time(plan: Plan, args: argparse.Namespace) -> bool:
    """`--speed` other than 1 stays in drills: say why and refuse on a production or staging plan."""
    from warroom.drills.session import fast_time_problem

    problem = fast_time_problem(plan, getattr(args, "speed", None))
    if problem:
        print(f"warroom: {problem}", file=sys.stderr)
    return problem is not None


def cmd_run(plan: Plan, args: argparse.Namespace) -> int:
    if _refused_fast_time(plan, args):
        return Exit.USAGE
    if args.faults and not any(s.type == "simulator" for s in plan.sources.values()):
        # Faults go into the simulator; ignoring them would make the run look like a rehearsal.
        print(terminal_safe(f"warroom: --faults needs a simulator source, and {plan.path or 'this plan'} has none (its sources: "
                            + ", ".join(f"{n} ({s.type})" for n, s in plan.sources.items())
                            + "). Rehearse the faults offline with `warroom drill PLAN --scenario FILE`, or inject them into the "
                            "rehearsal exporter your Prometheus scrapes (`warroom simulate --serve … --faults FILE`, or POST /fault)"),
              file=sys.stderr)
        return Exit.USAGE
    if not args.headless:
        return run_console(plan, args)
    from warroom.cli.lifecycle import cmd_run_headless  # the engine itself, in the foreground

    return cmd_run_headless(plan, args)


def run_console(plan: Plan, args: argparse.Namespace, engine_args: list[str] | None = None) -> int:
    from warroom.tui.launch import run_console as tui

    return tui(plan, args, engine_args=engine_args)


def _plan_or_demo(path: str | None, state: str | None = None) -> Plan:
    """The plan; without one, the built-in demo (in the folder of `--state` when given: the demo engine's own)."""
    if path:
        from warroom.plan.load import load_plan

        return load_plan(path)
    from warroom.plan.demo import demo_plan

    return demo_plan(Path(state).expanduser().resolve().parent if state else None)


def cmd_drill(plan: Plan, args: argparse.Namespace) -> int:
    from warroom.drills.session import run_drill_command

    return run_drill_command(plan, args.scenario, state=args.state, staging=args.staging, headless=args.headless,
                             speed=args.speed, console=lambda drill_plan, engine_args: run_console(drill_plan, args, engine_args))


def cmd_engine(plan: Plan, args: argparse.Namespace) -> int:
    """`warroom engine [PLAN] [--drill SCENARIO]`: a drill's engine prepares the drill plan and hosts the drill itself."""
    from warroom.cli.lifecycle import cmd_engine as run

    if not args.drill:
        return Exit.USAGE if _refused_fast_time(plan, args) else run(plan, args)
    from warroom.drills.session import drill_engine_plan

    drill_plan, attach = drill_engine_plan(plan, args.drill, state=args.state, staging=args.staging)
    return run(drill_plan, args, attach=attach)


def cmd_up(plan: Plan, args: argparse.Namespace) -> int:
    from warroom.cli.lifecycle import cmd_up as run

    return Exit.USAGE if _refused_fast_time(plan, args) else run(plan, args)


def cmd_down(plan: Plan, args: argparse.Namespace) -> int:
    from warroom.cli.lifecycle import cmd_down as run

    return run(plan, args)


def cmd_freeze(plan: Plan, args: argparse.Namespace) -> int:
    from warroom.cli.freeze import cmd_freeze as run

    return run(plan, args)


def cmd_thaw(plan: Plan, args: argparse.Namespace) -> int:
    from warroom.cli.freeze import cmd_thaw as run

    return run(plan, args)


def _reader(verb: str) -> Callable[[Plan, argparse.Namespace], int]:
    """A reading verb's handler (cli/reading.py), imported when it runs: a console's start never needs it."""

    def run(plan: Plan, args: argparse.Namespace) -> int:
        from warroom.cli import reading

        handler: Callable[[Plan, argparse.Namespace], int] = getattr(reading, f"cmd_{verb}")
        return handler(plan, args)

    return run


def cmd_check(plan: Plan, args: argparse.Namespace) -> int:
    from warroom.cli.check import cmd_check as run

    return run(plan, args)


def cmd_verify(plan: Plan, args: argparse.Namespace) -> int:
    from warroom.cli.verify import cmd_verify as run

    return run(plan, args)


def cmd_page(plan: Plan, args: argparse.Namespace) -> int:
    from warroom.cli.page import cmd_page as run

    return run(plan, args)


def cmd_update(plan: Plan, args: argparse.Namespace) -> int:
    """`warroom update PLAN`: the waiting draft; with --approve, publish it (or the --edit-file's text) as the sender."""
    from warroom.cli.page import approved_text, show_update
    from warroom.cli.reading import client_of

    text = approved_text(plan, args)
    if isinstance(text, int):
        return text
    if not args.approve:
        return show_update(plan, client_of(plan, args))
    args.text = text
    return actor_cmd(Verb.UPDATE)(plan, args)


HANDLERS: dict[str, Callable[[Plan, argparse.Namespace], int]] = {
    "check": cmd_check,
    "engine": cmd_engine,
    "up": cmd_up,
    "down": cmd_down,
    "drill": cmd_drill,
    "report": _reader("report"),
    "run": cmd_run,
    "status": _reader("status"),
    "journal": _reader("journal"),
    "verify": cmd_verify,
    "freeze": cmd_freeze,
    "thaw": cmd_thaw,
    "page": cmd_page,
    "update": cmd_update,  # shows the draft; --approve sends Verb.UPDATE
    **{verb: actor_cmd(verb) for verb in Verb if verb not in (Verb.SHUTDOWN, Verb.UPDATE)},  # `down` sends SHUTDOWN
}


def main(argv: list[str] | None = None) -> int:
    # Start-up builds a few hundred thousand objects (Textual's and the snapshot's types, the
    # widgets): the cyclic collector, walking them again and again, cost a console a fifth of its
    # start. It is off until the console's first frame is on the screen (tui/app.py `on_ready`),
    # or until it gave up; `python -m warroom` turns it off before this module's imports too.
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in VERBS:
        gc.enable()  # a verb may run for hours (the engine, the rehearsal service): only the console holds it off
    else:
        gc.disable()
    try:
        return _run(argv)
    finally:
        gc.enable()


def _run(argv: list[str]) -> int:
    try:
        if argv and argv[0] == "secret":
            from warroom.cli.secret import run_secret

            return run_secret(verb_parser().parse_args(argv))
        if argv and argv[0] == "simulate":  # needs no plan: it serves the rehearsal service
            from warroom.drills.exporter import run_simulate

            return run_simulate(verb_parser().parse_args(argv))
        if argv and argv[0] in HANDLERS:
            args = verb_parser().parse_args(argv)
            return HANDLERS[args.verb](_plan_or_demo(args.plan, args.state), args)
        if argv and argv[0] in ("-h", "--help"):
            print(help_text())
            return 0
        args = console_parser().parse_args(argv)
        if args.plan:
            from warroom.tui.launch import attach  # its engine runs: the plan it saved, not the file parsed again

            attached = attach(args.plan, args)
            if attached is not None:
                return attached
        plan = _plan_or_demo(args.plan, args.state)
        if _refused_fast_time(plan, args):
            return Exit.USAGE
        return run_console(plan, args)
    except PlanError as exc:
        print(terminal_safe(str(exc), keep_newlines=True), file=sys.stderr)
        return Exit.PROBLEM
    except CommandTooLarge as exc:  # the user's own words are too long: say the cap, send nothing
        print(f"warroom: {terminal_safe(str(exc))}", file=sys.stderr)
        return Exit.USAGE
    except (StoreError, SecretError) as exc:
        print(f"warroom: {terminal_safe(redact(str(exc)), keep_newlines=True)}", file=sys.stderr)
        return Exit.PROBLEM
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`warroom report | head`): no traceback, and none at exit either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
