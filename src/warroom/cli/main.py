"""Command-line verbs: each turns into engine calls; no rollout logic lives here.

Exit codes: core/exit_codes.py (and the README).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from warroom.client import Asked, EngineClient, ask_locally
from warroom.core.exit_codes import Exit
from warroom.core.identity import current_actor
from warroom.core.lines import entry_line, say, stamp
from warroom.core.local_wire import COMMANDS
from warroom.core.secrets import SecretError, redact
from warroom.core.snapshot import JournalEntry, Snapshot, State
from warroom.core.text import terminal_safe
from warroom.core.units import format_duration, format_value, parse_duration
from warroom.core.verbs import Verb
from warroom.plan.yamlfile import PlanError
from warroom.store import StoreError, open_store
from warroom.store.base import CommandTooLarge, StoreMissing, StoreUnwritable, process_started
from warroom.store.paths import StateRef, default_state_path, named_state, state_path

if TYPE_CHECKING:  # the plan's model (pydantic) is imported where a plan is loaded: never by a console attaching
    from warroom.plan.model import Plan

T = TypeVar("T")
LOCAL = {v.value for v in COMMANDS}  # verbs that go to this host's engine over its local socket when the store cannot take them
VERBS = ("check", "run", "drill", "report", "status", "step", "pause", "resume", "rollback", "retry", "tick", "ack", "journal",
         "engine", "approve", "reject", "verify", "up", "down", "freeze", "thaw", "secret", "simulate", "page", "update")


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


def _running_for() -> float:
    """Seconds since this process started (since its human pressed Enter), on this host's clock."""
    started = process_started(os.getpid())
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, uptime - started / os.sysconf("SC_CLK_TCK")) if started is not None else 0.0


def _phase(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a phase number (0 before the first phase), not {text!r}")
    return int(text)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ------------------------------------------------------------------ helpers

def _client(plan: Plan, args: argparse.Namespace) -> EngineClient:
    """A client of this rollout's store; StoreMissing when no engine ever ran on it."""
    return EngineClient(open_store(state_path(plan, args.state), create=False), actor=current_actor())


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


def _print_status(snap: Snapshot, plan_path: str) -> None:
    phase = f"{snap.phase.index}/{snap.phase_count} {snap.phase.name}" if snap.phase else f"0/{snap.phase_count} (not started)"
    say(f"{snap.rollout} [{snap.environment.upper()}]  {snap.state.label}  phase {phase}")
    if snap.paused_reason and snap.state == State.PAUSED:
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
    for frozen in snap.freezes:
        say(f"  {frozen.banner(snap.now, ZoneInfo(snap.zone))} — {frozen.kind.value}" + (f" by {frozen.by}" if frozen.by else ""))
    if snap.next_scheduled:
        say(f"  scheduled: {snap.next_scheduled}")
    if snap.step_blockers:
        say("  step up blocked: " + "; ".join(snap.step_blockers))
    elif snap.next_change:
        say(f"  next step: {snap.next_change}")
    engine = snap.engine
    if engine is not None and engine.alive:
        say(f"  engine: {engine.room(pids=True)}")
        say(f"          epoch {engine.epoch}, heartbeat {engine.heartbeat_age or 0:.1f}s ago, log {engine.log}")
        if engine.local:  # a full disk: it guards from memory, and says so on its local socket
            say(f"          it answers on this host's local socket, but cannot renew its heartbeat: {engine.local}")
    else:
        age = f"; these numbers were published {format_duration(time.time() - snap.wall)} ago" if snap.wall else ""
        say(f"  NO ENGINE — guardrails NOT enforced{age}. Start one: warroom up {plan_path}")


def cmd_status(plan: Plan, args: argparse.Namespace) -> int:
    """Where the rollout stands, from the store: what the engine last published, and whether it is alive."""
    try:
        client = _client(plan, args)
    except StoreMissing:
        print(f"{plan.rollout.name}: no rollout recorded yet (no engine has run on {state_path(plan, args.state)})")
        return 0
    snap = client.snapshot()
    if snap is None:
        print(f"{plan.rollout.name}: no engine has published yet")
        view = client.engine(plan.poll_interval)
        return Exit.OK if view.alive else Exit.NO_ENGINE
    if args.json:
        print(json.dumps(snap.to_json(), default=str, indent=2))
    else:
        _print_status(snap, str(plan.path))
    assert snap.engine is not None
    return Exit.of_status(snap, engine_alive=snap.engine.alive)


def _newest_state() -> Path | None:
    """The state database written last: plans' and drills' in the state folder, the demo's in the temp folder."""
    from warroom.plan.demo import WORKDIR_PREFIX

    folder = default_state_path("_").parent
    found = [*folder.glob("*.sqlite"), *folder.glob("drills/*/state.sqlite"),
             *Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*/*.sqlite")]

    def written(db: Path) -> float:  # a WAL database's last writes may be in its -wal file only
        return max((f.stat().st_mtime for f in (db, db.with_name(db.name + "-wal")) if f.exists()), default=0.0)

    return max(found, key=written, default=None)


def _state_to_read(plan: Plan, args: argparse.Namespace) -> StateRef | None:
    """The database `journal` and `report` read: --state, the plan's, or (neither given) the newest one.
    Without a plan, `--state postgresql://…` reads the rollout named by --rollout (or the database's only one)."""
    if args.plan:
        found = state_path(plan, args.state)
        return found.model_copy(update={"rollout": args.rollout}) if args.rollout and not isinstance(found, Path) else found
    if args.state:
        return named_state(args.state, args.rollout)
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
        return Exit.USAGE
    try:
        store = open_store(db, create=False, readonly=True)  # a reader: a backup on a read-only file system opens too
    except StoreMissing as exc:
        print(f"warroom: {exc}" if not isinstance(db, Path) else f"warroom: {db}: no journal here (nothing has run with this state yet)",
              file=sys.stderr)
        return Exit.PROBLEM
    # Streamed: the newest N come from the database's end, the whole journal a page at a time.
    entries = reversed(store.tail(args.limit)) if args.limit else store.iter_entries()
    for e in entries:
        if args.json:  # JSON escapes every control character itself
            print(json.dumps({"seq": e.seq, "ts": e.ts, "time": stamp(e.ts), "kind": e.kind, "message": e.message,
                              "actor": e.actor, "action_id": e.action_id, "data": e.data}, default=str))
        else:
            print(entry_line(e))
    return 0


def _progress(verb: str) -> Callable[[JournalEntry], None]:
    def say(entry: JournalEntry) -> None:
        print(terminal_safe(f"{verb}: {entry.message}"), file=sys.stderr, flush=True)

    return say


def _actor_cmd(name: Verb) -> Callable[[Plan, argparse.Namespace], int]:
    def run(plan: Plan, args: argparse.Namespace) -> int:
        """Send the command to the rollout's engine, tell its progress, print its outcome."""
        path = state_path(plan, args.state)
        me = current_actor()
        args_of: dict[Verb, Callable[[], dict[str, Any]]] = {
            Verb.STEP: lambda: {"force": args.force, "reason": args.reason or "", "from_phase": args.from_phase},
            Verb.PAUSE: lambda: {"reason": args.reason or ""},
            Verb.ROLLBACK: lambda: {"reason": args.reason or f"manual rollback by {me.label()} (CLI)"},
            Verb.TICK: lambda: {"item": args.item, "undo": args.undo},
            Verb.UPDATE: lambda: {"text": getattr(args, "text", "")},
            # The plan this person looked at: an approval binds to it, and the engine refuses one given on another.
            Verb.APPROVE: lambda: {"note": args.note or "", "digest": plan.digest()},
            Verb.REJECT: lambda: {"note": args.note, "digest": plan.digest()},
        }

        def send() -> tuple[EngineClient | None, int | Asked, int] | int:
            """(client, command id or the outcome asked over the local socket, journal position before it), or an exit code."""
            try:
                client = EngineClient(open_store(path, create=name is Verb.ROLLBACK), actor=me)
            except StoreMissing:
                client = None
            except StoreUnwritable as exc:  # a database out of reach: the way back may still reach this host's engine
                asked = ask_locally(str(path), name, args_of.get(name, dict)(), me, str(exc), _sent_locally(name)) if name in LOCAL else None
                if asked is None:
                    raise
                return None, asked, 0
            since = client.store.last_seq() if client is not None else 0
            if name is Verb.ROLLBACK:
                assert client is not None  # a rollback creates the store it needs
                # Queued first, whatever this client thinks of the engine: the driving engine runs it (or this host's
                # engine over its local socket, when the store cannot take it). Only when none drives (on the store's
                # clock) is one started, and it finds the rollback queued.
                rollback = client.send_or_ask(name, args_of[name](), _sent_locally(name))
                if not isinstance(rollback, Asked) and not client.engine(plan.poll_interval).alive:
                    from warroom.cli.lifecycle import start_for_rollback  # only here: a client verb never loads the engine otherwise

                    if not start_for_rollback(plan, path, client):
                        return Exit.PROBLEM
                return client, rollback, since
            if client is None or not client.engine(plan.poll_interval).alive:
                print(f"warroom: no engine drives {plan.rollout.name}: start one with `warroom up {plan.path}` (or open the console)",
                      file=sys.stderr)
                return Exit.REFUSED
            request = args_of.get(name, dict)()
            if name is Verb.STEP and request["from_phase"] is None:
                # When it was typed, and the phase as it stands now: the engine refuses a step the rollout moved on from.
                request.update(from_phase=client.store.load_state()[1].get("phase", 0), waited=_running_for())
            return client, client.send_or_ask(name, request, _sent_locally(name)), since

        sent = _until_the_store_answers(send) if name is Verb.ROLLBACK else send()
        if isinstance(sent, int):
            return sent
        client, command_id, since = sent
        if isinstance(command_id, Asked):
            command = command_id.command
        else:
            assert client is not None
            command = client.wait(command_id, _progress(name), since=since, on_away=_still_waiting(name))
        if not command.done:
            print(f"warroom: the engine stopped before answering ({name} is {command.status}); see `warroom status {plan.path}`", file=sys.stderr)
            return Exit.PROBLEM
        if command.status != "done":
            print(f"warroom: {terminal_safe(command.message)}", file=sys.stderr)
            return Exit.REFUSED if command.status in ("refused", "expired") else Exit.PROBLEM
        if client is not None and command.action_id and client.store.action_status(command.action_id) == "abandoned":
            # A step up a rollback took over did not step: the state it left, as `status` would say it.
            print(f"warroom: {terminal_safe(command.message)}", file=sys.stderr)
            snap = client.snapshot()
            return (Exit.of_state(snap.state) if snap is not None else Exit.OK) or Exit.REFUSED
        print(terminal_safe(command.message))  # the answer quotes the plan (an item's text) and the user (`--reason`)
        return 0

    return run


def _sent_locally(verb: str) -> Callable[[str], None]:
    def say(why: str) -> None:
        print(terminal_safe(f"{verb}: the store cannot take it ({redact(why)}): sent to the engine over this host's local socket; "
                            "waiting for its outcome"), file=sys.stderr, flush=True)

    return say


def _still_waiting(verb: str) -> Callable[[StoreUnwritable, int], None]:
    """What a verb says while its store cannot be reached after its command went out (a database restarting)."""
    def say(exc: StoreUnwritable, tries: int) -> None:
        if tries == 1 or tries % 10 == 0:
            print(f"{verb}: sent; the store cannot be reached to follow it (try {tries}): {terminal_safe(redact(str(exc)))}; "
                  "the engine goes on, waiting for its answer (Ctrl-C stops waiting, not the command)", file=sys.stderr, flush=True)

    return say


def _until_the_store_answers(send: Callable[[], T]) -> T:
    """A rollback is never given up because its store cannot be reached for a moment (a database
    restarting, a network blip, a full disk): it says so on each try and sends once it can.
    Ctrl-C gives up; other verbs fail at once with the store's message."""
    tries = 0
    while True:
        try:
            return send()
        except StoreUnwritable as exc:
            from warroom.outbound.retry import Backoff  # only once a store cannot be reached: tenacity costs every verb's start-up

            tries += 1
            print(f"rollback: not sent yet (try {tries}): {terminal_safe(redact(str(exc)))}; retrying until the store "
                  "answers (Ctrl-C gives up)", file=sys.stderr, flush=True)
            time.sleep(Backoff(initial=0.25, cap=2.0).delay(tries))  # 0.25 s, 0.5 s … then every 2 s


def run_console(plan: Plan, args: argparse.Namespace, engine_args: list[str] | None = None) -> int:
    from warroom.tui.launch import run_console as tui

    return tui(plan, args, engine_args=engine_args)


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
    e = verb("engine", "run the rollout's engine in the foreground (systemd, a container, tmux); a second one waits as standby", demo=True)
    _engine_options(e)
    e.add_argument("--drill", metavar="SCENARIO", help="host a drill of PLAN (what `warroom drill` starts for its console)")
    e.add_argument("--staging", action="store_true", help="with --drill: the plan's own sources and flag provider")
    e.add_argument("--replace", default="", help=argparse.SUPPRESS)  # the engine to take the lease from: what `up --replace` starts
    u = verb("up", "start the rollout's engine detached (it outlives this terminal); say who drives if one is alive")
    _engine_options(u)
    u.add_argument("--replace", action="store_true",
                   help="restart the engine without a gap: a new one takes the lease straight from the one that drives")
    dn = verb("down", "stop every engine of the rollout (through the store: from any host)")
    dn.add_argument("--force", action="store_true",
                    help="stop even while the launch is live (users exposed, a guardrail counting down) or a rollback is in flight")
    dn.add_argument("--here", action="store_true",
                    help="stop only this host's engines of the rollout (a host's systemd unit): a standby elsewhere takes over")
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
    rp.add_argument("--format", choices=("md", "html"), default="md",
                    help="md: Markdown for the ticket; html: one self-contained page with the panes charted around each event (default: md)")
    rp.add_argument("-o", "--output", help="file to write (default: standard output)")
    _reader_options(rp)
    s = verb("status", "print where the rollout stands (exit code = state)")
    s.add_argument("--json", action="store_true",
                   help="the whole snapshot (state, phase, panes, flags, engine) as one JSON object, for scripts; the exit code is the same")
    st = verb("step", "step up to the next phase")
    st.add_argument("--force", action="store_true", help="override soak, gates and checklist (needs --reason)")
    st.add_argument("--reason", help="why, journaled with the step and shown on every console (required with --force)")
    st.add_argument("--from", dest="from_phase", type=_phase, default=None, metavar="PHASE",
                    help="step only if the rollout is still at this phase (default: the phase it is at as the verb starts)")
    pa = verb("pause", "pause automation and step-ups")
    pa.add_argument("--reason", help="why, journaled and shown on every console (default: paused by you)")
    verb("resume", "resume after a pause")
    rb = verb("rollback", "roll back now")
    rb.add_argument("--reason", help="why, journaled with the rollback and shown on every console (default: manual rollback by you)")
    verb("retry", "leave ROLLED BACK deliberately and start again at phase 0")
    t = verb("tick", "tick a checklist item of the current phase")
    t.add_argument("item", help="item id (1, 2, … or its `id`) or a unique part of its text")
    t.add_argument("--undo", action="store_true", help="untick instead")
    verb("ack", "acknowledge flag drift: accept the observed flags, let automation go on")
    ap = verb("approve", "sign off the step up that awaits approval (as the account or database role that runs this)")
    ap.add_argument("--note", help="what you checked (kept in the decision record)")
    rj = verb("reject", "refuse the step up that awaits approval: it does not happen")
    rj.add_argument("--note", required=True, help="why (kept in the decision record)")
    verb("verify", "check the decision record (approvals, rejections, go/no-go): names an edited or deleted entry")
    j = verb("journal", "print the journal of PLAN, of the state database given with --state, or else of the newest one", demo=True)
    j.add_argument("--json", action="store_true", help="one JSON object per entry and line (seq, time, kind, message, actor, data)")
    j.add_argument("--limit", type=_count, default=0, help="only the newest N entries")
    _reader_options(j)
    from warroom.cli.freeze import add_freeze_parsers

    add_freeze_parsers(verb)
    # Imported here, not at the top: the console's start-up never pays for these verbs.
    from warroom.cli.page import add_page_parsers
    from warroom.cli.secret import add_secret_parser
    from warroom.drills.exporter import add_simulate_parser

    add_secret_parser(sub)
    add_simulate_parser(sub)
    add_page_parsers(sub)
    return p


def _reader_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rollout", help="with --state postgresql://…: the rollout to read (default: the plan's; "
                                     "without a plan, the only one the database holds)")


def _engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--speed", type=_speed, default=None, help="clock speed: 1 (real time), N (N× faster), max (virtual time)")
    p.add_argument("--lease-ttl", type=_duration, default=None,
                   help="how long the engine's lease lasts without a heartbeat before a standby takes over (default 10s)")


def _console_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--readonly", action="store_true", help="observe only: every action refused, [RO] shown")
    p.add_argument("--theme", help="theme name (see themes/)")


def _help() -> str:
    """`warroom --help`: one usage, the console's options, then every verb in a line (each has its own --help)."""
    import textwrap

    console = _console_parser().format_help().rstrip()
    verbs = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    lines = ["", "verbs (warroom VERB --help says more):"]
    for choice in verbs._choices_actions:
        lines += textwrap.wrap(choice.help or "", 78, initial_indent=f"  {choice.dest:<9} ", subsequent_indent=" " * 12)
    codes = [f"  {code.value:>2}  {code.meaning}" for code in Exit]
    return "\n".join([console, *lines, "", "exit codes:", *codes])


def _console_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="warroom",
        usage="warroom [PLAN] [--readonly] [--theme NAME] [--state DB] [--speed N]\n       warroom VERB [PLAN] [options]  (the verbs below; warroom VERB --help for each)",
        description="Open the console on PLAN, or on the built-in demo when no plan is given.",
    )
    p.add_argument("plan", nargs="?", help="the plan YAML file (none: the built-in demo)")
    p.add_argument("--state", help="state database")
    p.add_argument("--speed", type=_speed, default=None, help="clock speed: 1 (real time) or N× faster")
    _console_options(p)
    return p


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


def cmd_report(plan: Plan, args: argparse.Namespace) -> int:
    from warroom.reports.files import run_report_command

    db = _state_to_read(plan, args)
    return Exit.USAGE if db is None else run_report_command(plan, db, fmt=args.format, output=args.output)


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

    text = approved_text(plan, args)
    if isinstance(text, int):
        return text
    if not args.approve:
        return show_update(plan, _client(plan, args))
    args.text = text
    return _actor_cmd(Verb.UPDATE)(plan, args)


HANDLERS: dict[str, Callable[[Plan, argparse.Namespace], int]] = {
    "check": cmd_check,
    "engine": cmd_engine,
    "up": cmd_up,
    "down": cmd_down,
    "drill": cmd_drill,
    "report": cmd_report,
    "run": cmd_run,
    "status": cmd_status,
    "journal": cmd_journal,
    "verify": cmd_verify,
    "freeze": cmd_freeze,
    "thaw": cmd_thaw,
    "page": cmd_page,
    "update": cmd_update,  # shows the draft; --approve sends Verb.UPDATE
    **{verb: _actor_cmd(verb) for verb in Verb if verb not in (Verb.SHUTDOWN, Verb.UPDATE)},  # `down` sends SHUTDOWN
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "secret":
            from warroom.cli.secret import run_secret

            return run_secret(_parser().parse_args(argv))
        if argv and argv[0] == "simulate":  # needs no plan: it serves the rehearsal service
            from warroom.drills.exporter import run_simulate

            return run_simulate(_parser().parse_args(argv))
        if argv and argv[0] in HANDLERS:
            args = _parser().parse_args(argv)
            return HANDLERS[args.verb](_plan_or_demo(args.plan, args.state), args)
        if argv and argv[0] in ("-h", "--help"):
            print(_help())
            return 0
        args = _console_parser().parse_args(argv)
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
