"""How the command line reads: every verb's options (`warroom VERB --help`), the console's, and `warroom --help`.

Values a flag takes (a speed, a duration, a phase) are checked here: a wrong one is a usage
error naming the flag, never a traceback.
"""

from __future__ import annotations

import argparse

from warroom.core.exit_codes import Exit
from warroom.core.units import parse_duration


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


def _phase(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a phase number (0 before the first phase), not {text!r}")
    return int(text)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None



def verb_parser() -> argparse.ArgumentParser:
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
    e.add_argument("--rollback", type=int, default=None, help=argparse.SUPPRESS)  # the rollback command its starter queued
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


def help_text() -> str:
    """`warroom --help`: one usage, the console's options, then every verb in a line (each has its own --help)."""
    import textwrap

    console = console_parser().format_help().rstrip()
    verbs = next(a for a in verb_parser()._actions if isinstance(a, argparse._SubParsersAction))
    lines = ["", "verbs (warroom VERB --help says more):"]
    for choice in verbs._choices_actions:
        lines += textwrap.wrap(choice.help or "", 78, initial_indent=f"  {choice.dest:<9} ", subsequent_indent=" " * 12)
    codes = [f"  {code.value:>2}  {code.meaning}" for code in Exit]
    return "\n".join([console, *lines, "", "exit codes:", *codes])


def console_parser() -> argparse.ArgumentParser:
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
