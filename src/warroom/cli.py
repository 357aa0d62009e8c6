"""Command-line verbs: each turns into engine calls; no rollout logic lives here.

Exit codes (also in the README):
  0  ok: PENDING, RUNNING or COMPLETE; a command that did what it said
  1  a plan, state or secret problem (the message names file, line and field)
  2  usage error
  3  PAUSED            (status, run)
  4  ROLLING BACK      (status, run)
  5  ROLLED BACK       (status, run)
  6  the command was refused now (the message says why)
  7  check found a problem with a source or the flag provider
  8  a drill's score card did not pass
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Awaitable, Callable

from .engine.build import build_engine, runbook_dry_run, state_path
from .engine.clock import make_clock
from .engine.engine import CommandError, Engine
from .engine.exposure import share_text
from .engine.guardrails import describe as guardrail_words
from .engine.snapshot import Snapshot, State
from .headless import entry_line, run_headless, stamp, status_line
from .plan import Plan, PlanError, load_faults, load_plan, parse_duration
from . import secrets
from .demo import WORKDIR_PREFIX
from .secrets import SecretError, redact
from .store import Store, StoreError, default_state_path
from .text import terminal_safe
from .units import format_value

EXIT_PROBLEM, EXIT_USAGE, EXIT_REFUSED, EXIT_CHECK = 1, 2, 6, 7
VIRTUAL_DEFAULT_FOR = 24 * 3600.0  # virtual time never waits, so a run waiting on a human must end somewhere
STATE_EXIT = {State.PAUSED: 3, State.ROLLING_BACK: 4, State.ROLLED_BACK: 5}

VERBS = ("check", "run", "drill", "report", "status", "step", "pause", "resume", "rollback", "retry", "tick", "ack", "journal", "secret", "simulate")


def _speed(text: str) -> str | float:
    """`--speed`: 1, N (N× faster) or max; anything else is a usage error, not a traceback."""
    if text == "max":
        return text
    try:
        speed = float(text)
    except ValueError:
        speed = float("nan")
    if not speed > 0 or speed == float("inf"):
        raise argparse.ArgumentTypeError(f"expected 1 (real time), N (N× faster) or max, not {text!r}")
    return speed


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of entries, 1 or more, not {text!r}")
    return int(text)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def state_exit(state: State) -> int:
    return STATE_EXIT.get(state, 0)


# ------------------------------------------------------------------ helpers

def _engine(plan: Plan, args: argparse.Namespace, **kw: Any) -> Engine:
    return build_engine(plan, state=getattr(args, "state", None), **kw)


def _one_shot(plan: Plan, args: argparse.Namespace, act: Callable[[Engine], Awaitable[str]]) -> int:
    """Open the rollout, evaluate once (gates need fresh numbers), act, and report."""

    async def go() -> int:
        engine = _engine(plan, args, automation=False, announce=False, backfill=False)
        try:
            await engine.start()
            recovered = await engine.recover_orphans()
            if recovered:
                say(recovered)
            await engine.tick()
            try:
                message = await act(engine)
            except CommandError as exc:
                print(f"warroom: {exc}", file=sys.stderr)
                return EXIT_REFUSED
            await engine.wait_idle()
            print(message)
            return 0
        finally:
            await engine.close()

    return asyncio.run(go())


# ------------------------------------------------------------------ verbs

def say(text: str) -> None:
    """One line of output that quotes plans, servers or people: no escape sequence reaches the terminal."""
    print(terminal_safe(text))


def _check_secrets(plan: Plan) -> int:
    """Resolve every secret reference the plan uses; print where each is used, never a value."""
    refs = plan.secret_references()
    say("secrets:" + ("" if refs else " none used"))
    missing = 0
    for where, ref in refs:
        try:
            secrets.resolve(ref)
        except SecretError as exc:
            say(f"  FAIL {where}: {redact(str(exc))}")
            missing += 1
        else:
            say(f"  ok   {where}: {ref} resolves")
    return missing


def cmd_check(plan: Plan, args: argparse.Namespace) -> int:
    """Validate the plan (already done by loading it), resolve its secrets, probe every source and the provider."""

    async def go() -> int:
        engine = _engine(plan, args, automation=False, announce=False, backfill=False)
        problems = 0
        try:
            say(f"plan {plan.path or 'demo'}: valid ({len(plan.phases)} phases, {len(plan.panes)} panes, {len(plan.guardrails)} guardrails)")
            say(f"state: {state_path(plan, getattr(args, 'state', None))}")
            problems += _check_secrets(plan)
            say("queries:")
            queries, flags = await engine.probe()
            for (source_name, query, _), static, reading in queries:
                where = f"[{source_name}] {query}"
                if static:
                    say(f"  FAIL {where}")
                    say(f"       {static}")
                    problems += 1
                elif reading.has_value:
                    say(f"  ok   {where}")
                    say(f"       value {reading.value:g}")
                else:
                    say(f"  {'FAIL' if reading.status == 'error' else 'WARN'} {where}")
                    say(f"       {reading.status}: {reading.detail}")
                    problems += reading.status == "error"
            # Each guardrail in words and in its pane's unit, so a threshold off by a unit shows.
            say("guardrails:")
            for i, g in enumerate(plan.guardrails):
                say(f"  {plan.guardrail_id(i)}: {guardrail_words(plan, g)}")
            _print_cohort_probes(engine, {key: reading for key, _, reading in queries})
            _print_drill_check(plan)
            if plan.rollback.steps:
                dry, why = runbook_dry_run(plan)
                say(f"rollback runbook: {len(plan.rollback.steps)} step(s), {'dry run' if dry else 'executed'} ({why})")
            say(f"rollback sets: {', '.join(f'{n} {s.as_state().label()}' for n, s in plan.rollback_flags().items())}")
            say(f"flag provider: {engine.provider.describe()}")
            missing = engine.provider.missing_flag_problem
            for name, observed in flags.items():
                if observed is None and missing:
                    observed = missing
                if isinstance(observed, str):
                    say(f"  FAIL {name}: {observed}")
                    problems += 1
                else:
                    say(f"  ok   {name}: {observed.label() if observed else 'does not exist yet; the first step up creates it'}")
        finally:
            await engine.close()
        say("check: " + ("all good" if not problems else f"{problems} problem(s)"))
        return EXIT_CHECK if problems else 0

    return asyncio.run(go())


def _print_cohort_probes(engine: Engine, readings: dict) -> None:
    """Both sides of every comparison, their counts, and the exposure check's queries, side by side."""
    lines = []
    for tracker, _ in engine.trackers:
        if tracker.guard.compare is not None or tracker.guard.evidence is not None:
            sides = "; ".join(f"{role.replace('count', 'requests').replace('_', ' ')} "
                              f"{_probe_value(readings.get(key), 'count' if role.startswith('count') else tracker.unit)}"
                              for role, key in tracker.queries.keys.items())
            lines.append(f"  {tracker.id}: {sides}")
    if engine.exposure is not None:
        counts = {c: readings.get(k) for c, k in engine.exposure.keys.items()}
        sides = "; ".join(f"{c} {_probe_value(r, 'count')}" for c, r in counts.items())
        values = [r.value for r in counts.values() if r is not None and r.has_value]
        share = f"; new share now {share_text(values[0] / sum(values))}" if len(values) == 2 and sum(values) > 0 else ""
        lines.append(f"  exposure check (flag {engine.exposure.flag}): units {sides}{share}")
    if lines:
        say("cohorts (each side as probed above):")
        for line in lines:
            say(line)


def _probe_value(reading, unit: str) -> str:
    if reading is None:
        return "not asked"
    return format_value(reading.value, unit) if reading.has_value else f"{reading.status} ({reading.detail})"


def _refused_fast_time(plan: Plan, args: argparse.Namespace) -> bool:
    """`--speed` other than 1 stays in drills: say why and refuse on a production or staging plan."""
    from .drill import fast_time_problem

    problem = fast_time_problem(plan, getattr(args, "speed", None))
    if problem:
        print(f"warroom: {problem}", file=sys.stderr)
    return problem is not None


def _print_drill_check(plan: Plan) -> None:
    """What a drill of this plan can model offline (every pane, with the line to add where it cannot), and fast time."""
    from .drill import fast_time_problem
    from .sim_queries import pane_models, unmodelled_advice, unmodelled_conditions

    models = pane_models(plan)
    modelled = sum(1 for m in models if m.expression)
    say(f"drill (offline, simulator): {modelled} of {len(models)} panes modelled")
    for m in models:
        if m.expression:
            how = "its simulate:" if m.how == "simulate:" else f"inferred from query and unit; pin it with `simulate: {m.expression}`"
            say(f"  {m.pane}: {m.expression} ({how})")
    for line in unmodelled_advice(plan) + [f"{c}: a drill cannot model it" for c in unmodelled_conditions(plan)]:
        say(f"  WARN {line}")
    problem = fast_time_problem(plan, "N")
    say("fast time (--speed other than 1): " + (
        f"refused for this plan: environment {plan.rollout.environment} means real state and flags; "
        "`warroom drill` rehearses it fast in its own state" if problem else "allowed (environment drill)"))


def cmd_run(plan: Plan, args: argparse.Namespace) -> int:
    if _refused_fast_time(plan, args):
        return EXIT_USAGE
    if args.faults and not any(s.type == "simulator" for s in plan.sources.values()):
        # Faults go into the simulator; ignoring them would make the run look like a rehearsal.
        print(terminal_safe(f"warroom: --faults needs a simulator source, and {plan.path or 'this plan'} has none (its sources: "
                            + ", ".join(f"{n} ({s.type})" for n, s in plan.sources.items())
                            + "). Rehearse the faults offline with `warroom drill PLAN --scenario FILE`, or inject them into the "
                            "rehearsal exporter your Prometheus scrapes (`warroom simulate --serve … --faults FILE`, or POST /fault)"),
              file=sys.stderr)
        return EXIT_USAGE
    if not args.headless:
        return run_console(plan, args)
    faults = load_faults(Path(args.faults)) if args.faults else ()  # a PlanError: located, exit 1
    clock = make_clock(args.speed)
    limit = args.for_ or (VIRTUAL_DEFAULT_FOR if clock.speed == float("inf") else None)
    engine = _engine(plan, args, clock=clock, extra_faults=faults)
    snap = asyncio.run(run_headless(engine, until_done=args.until_done, status_every=args.status_every, run_for=limit))
    print(status_line(snap))
    return state_exit(snap.state)


def _print_status(snap: Snapshot) -> None:
    phase = f"{snap.phase.index}/{snap.phase_count} {snap.phase.name}" if snap.phase else f"0/{snap.phase_count} (not started)"
    say(f"{snap.rollout} [{snap.environment.upper()}]  {snap.state.label}  phase {phase}")
    if snap.paused_reason:
        say(f"  paused: {snap.paused_reason}")
    for note in snap.notes:
        say(f"  {note}")
    if snap.phase:
        say(f"  in phase {snap.phase.elapsed:.0f}s, soak left {snap.phase.soak_left:.0f}s")
    for pane in snap.panes:
        say(f"  {pane.title:<24} {format_value(pane.value, pane.unit):>10}  {pane.status}" + (f"  {pane.note}" if pane.note else ""))
    if snap.exposure is not None and snap.exposure.status != "idle":
        say(f"  exposure check: {snap.exposure.text}")
    for flag in snap.flags:
        desired = flag.desired.label() if flag.desired else "—"
        observed = flag.observed.label() if flag.observed else (flag.error or "—")
        say(f"  flag {flag.name:<20} desired {desired:<8} observed {observed}{'  DRIFT' if flag.drift else ''}")
    if snap.step_blockers:
        say("  step up blocked: " + "; ".join(snap.step_blockers))
    elif snap.next_change:
        say(f"  next step: {snap.next_change}")
    say(f"  driver: {snap.driver or 'nobody (no console running)'}")


def cmd_status(plan: Plan, args: argparse.Namespace) -> int:
    async def go() -> Snapshot:
        engine = _engine(plan, args, automation=False, announce=False, backfill=False)
        try:
            await engine.start()
            return await engine.tick()
        finally:
            await engine.close()

    snap = asyncio.run(go())
    if args.json:
        print(json.dumps(snap.to_json(), default=str, indent=2))
    else:
        _print_status(snap)
    return state_exit(snap.state)


def _newest_state() -> Path | None:
    """The state database written last: plans' and drills' in the state folder, the demo's in the temp folder."""
    folder = default_state_path("_").parent
    found = [*folder.glob("*.sqlite"), *folder.glob("drills/*/state.sqlite"),
             *Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*/*.sqlite")]

    def written(db: Path) -> float:  # a WAL database's last writes may be in its -wal file only
        return max((f.stat().st_mtime for f in (db, db.with_name(db.name + "-wal")) if f.exists()), default=0.0)

    return max(found, key=written, default=None)


def _state_to_read(plan: Plan, args: argparse.Namespace) -> Path | None:
    """The database `journal` and `report` read: --state, the plan's, or (neither given) the newest one."""
    if args.plan or args.state:
        return state_path(plan, args.state)
    newest = _newest_state()
    if newest is None:
        print("warroom: no state database found (none in the state folder, no demo's in the temp folder); "
              "give a PLAN or --state DB", file=sys.stderr)
    else:
        print(f"warroom: reading the newest state database, {newest} (give a PLAN or --state DB for another)", file=sys.stderr)
    return newest


def cmd_journal(plan: Plan, args: argparse.Namespace) -> int:
    db = _state_to_read(plan, args)
    if db is None:
        return EXIT_USAGE
    if not db.exists():
        print(f"warroom: {db}: no journal here (nothing has run with this state yet)", file=sys.stderr)
        return EXIT_PROBLEM
    store = Store(db)
    # Streamed: the newest N come from the database's end, the whole journal a page at a time.
    entries = reversed(store.tail(args.limit)) if args.limit else store.iter_entries()
    for e in entries:
        if args.json:  # JSON escapes every control character itself
            print(json.dumps({"seq": e.seq, "ts": e.ts, "time": stamp(e.ts), "kind": e.kind, "message": e.message,
                              "actor": e.actor, "action_id": e.action_id, "data": e.data}, default=str))
        else:
            print(entry_line(e))
    return 0


def _actor_cmd(name: str) -> Callable[[Plan, argparse.Namespace], int]:
    def run(plan: Plan, args: argparse.Namespace) -> int:
        async def act(engine: Engine) -> str:
            # The answer quotes the plan (an item's text) and the user (`--reason`): printed, so made safe.
            try:
                return terminal_safe(await command(engine))
            except CommandError as exc:
                raise CommandError(terminal_safe(str(exc))) from None

        def command(engine: Engine) -> Awaitable[str]:
            me = engine.actor
            if name == "step":
                return engine.step_up(me, force=args.force, reason=args.reason or "")
            if name == "pause":
                return engine.pause(me, args.reason or "")
            if name == "rollback":
                return engine.rollback(me, args.reason or f"manual rollback by {me.label()} (CLI)")
            if name == "tick":
                return engine.tick_item(me, args.item, ticked=not args.undo)
            return {"resume": engine.resume, "retry": engine.retry, "ack": engine.ack_drift}[name](me)

        return _one_shot(plan, args, act)

    return run


def run_console(plan: Plan, args: argparse.Namespace,
                attach: Callable[[Engine], Callable[[Snapshot], Awaitable[None]]] | None = None) -> int:
    from .tui.launch import run_console as tui

    return tui(plan, args, attach=attach)


# ------------------------------------------------------------------ parsing

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="warroom", description="A war-room console for running launches.")
    sub = p.add_subparsers(dest="verb", metavar="VERB")

    def verb(name: str, help: str, demo: bool = False) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        if demo:
            sp.add_argument("plan", nargs="?", help="the plan YAML file (none: the built-in demo)")
        else:
            sp.add_argument("plan", help="the plan YAML file")
        sp.add_argument("--state", help="state database (default: the plan's `state`, else the user state dir)")
        return sp

    verb("check", "validate a plan and probe every source query and flag", demo=True)
    r = verb("run", "drive a plan: the console, or plain log lines with --headless", demo=True)
    r.add_argument("--headless", action="store_true", help="no screen: timestamped log lines")
    r.add_argument("--speed", type=_speed, default=None, help="clock speed: 1 (real time), N (N× faster), max (virtual time)")
    r.add_argument("--until-done", action="store_true", help="exit when the rollout is COMPLETE or ROLLED BACK")
    r.add_argument("--faults", help="a fault schedule (YAML list) for the simulator")
    r.add_argument("--status-every", type=float, default=60.0, help="seconds of clock time between status lines")
    r.add_argument("--for", dest="for_", type=_duration, default=None,
                   help="stop after this much clock time (default with --speed max: 24h, so a run waiting for a human ends)")
    _console_options(r)
    d = verb("drill", "rehearse the plan (environment DRILL) against a scenario of faults; print the score card", demo=True)
    d.add_argument("--scenario", help="scenario YAML file, or the name of a shipped one (see scenarios/)")
    d.add_argument("--headless", action="store_true", help="no screen: the scenario's scripted responder acts")
    d.add_argument("--speed", type=_speed, default=None, help="clock speed: 1, N (N× faster), max (virtual time; headless default)")
    d.add_argument("--staging", action="store_true", help="use the plan's own sources and flag provider, not the simulator and a scratch flag file")
    _console_options(d)
    rp = verb("report", "write the post-mortem from the journal: phases, actions, breaches, rollback latency", demo=True)
    rp.add_argument("--format", choices=("md", "html"), default="md")
    rp.add_argument("-o", "--output", help="file to write (default: standard output)")
    s = verb("status", "print where the rollout stands (exit code = state)")
    s.add_argument("--json", action="store_true")
    st = verb("step", "step up to the next phase")
    st.add_argument("--force", action="store_true", help="override soak, gates and checklist (needs --reason)")
    st.add_argument("--reason", help="why (required with --force)")
    pa = verb("pause", "pause automation and step-ups")
    pa.add_argument("--reason")
    verb("resume", "resume after a pause")
    rb = verb("rollback", "roll back now")
    rb.add_argument("--reason")
    verb("retry", "leave ROLLED BACK deliberately and start again at phase 0")
    t = verb("tick", "tick a checklist item of the current phase")
    t.add_argument("item", help="item id (1, 2, … or its `id`) or a unique part of its text")
    t.add_argument("--undo", action="store_true", help="untick instead")
    verb("ack", "acknowledge flag drift: accept the observed flags, let automation go on")
    j = verb("journal", "print the journal of PLAN, of the state database given with --state, or else of the newest one", demo=True)
    j.add_argument("--json", action="store_true", help="one JSON object per line")
    j.add_argument("--limit", type=_count, default=0, help="only the newest N entries")
    # Imported here, not at the top: the console's start-up never pays for these verbs.
    from .exporter import add_simulate_parser
    from .secret_cli import add_secret_parser

    add_secret_parser(sub)
    add_simulate_parser(sub)
    return p


def _console_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--readonly", action="store_true", help="observe only: every action refused, [RO] shown")
    p.add_argument("--theme", help="theme name (see themes/)")


def _console_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="warroom",
        usage="warroom [PLAN] [--readonly] [--theme NAME] [--state DB] [--speed N]\n       warroom VERB …  (" + ", ".join(VERBS) + ")",
        description="Open the console on PLAN, or on the built-in demo when no plan is given.",
    )
    p.add_argument("plan", nargs="?", help="the plan YAML file (none: the built-in demo)")
    p.add_argument("--state", help="state database")
    p.add_argument("--speed", type=_speed, default=None, help="clock speed: 1 (real time) or N× faster")
    _console_options(p)
    return p


def _plan_or_demo(path: str | None) -> Plan:
    if path:
        return load_plan(path)
    from .demo import demo_plan

    return demo_plan()


def cmd_drill(plan: Plan, args: argparse.Namespace) -> int:
    from .drill import run_drill_command

    return run_drill_command(plan, args.scenario, state=args.state, staging=args.staging, headless=args.headless,
                             speed=args.speed, console=lambda drill_plan, attach: run_console(drill_plan, args, attach))


def cmd_report(plan: Plan, args: argparse.Namespace) -> int:
    from .report import run_report_command

    db = _state_to_read(plan, args)
    return EXIT_USAGE if db is None else run_report_command(plan, db, fmt=args.format, output=args.output)


HANDLERS: dict[str, Callable[[Plan, argparse.Namespace], int]] = {
    "check": cmd_check,
    "drill": cmd_drill,
    "report": cmd_report,
    "run": cmd_run,
    "status": cmd_status,
    "journal": cmd_journal,
    **{name: _actor_cmd(name) for name in ("step", "pause", "resume", "rollback", "retry", "tick", "ack")},
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "secret":
            from .secret_cli import run_secret

            return run_secret(_parser().parse_args(argv))
        if argv and argv[0] == "simulate":  # needs no plan: it serves the rehearsal service
            from .exporter import run_simulate

            return run_simulate(_parser().parse_args(argv))
        if argv and argv[0] in HANDLERS:
            args = _parser().parse_args(argv)
            return HANDLERS[args.verb](_plan_or_demo(args.plan), args)
        if argv and argv[0] in ("-h", "--help"):
            _console_parser().print_help()
            print()
            _parser().print_help()
            return 0
        args = _console_parser().parse_args(argv)
        plan = _plan_or_demo(args.plan)
        if _refused_fast_time(plan, args):
            return EXIT_USAGE
        return run_console(plan, args)
    except PlanError as exc:
        print(terminal_safe(str(exc), keep_newlines=True), file=sys.stderr)
        return EXIT_PROBLEM
    except (StoreError, SecretError) as exc:
        print(f"warroom: {terminal_safe(redact(str(exc)), keep_newlines=True)}", file=sys.stderr)
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`warroom report | head`): no traceback, and none at exit either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
