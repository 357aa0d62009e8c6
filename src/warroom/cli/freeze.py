"""`warroom freeze` and `warroom thaw`: stop and restart going forward, from any host.

A freeze is one row in the rollout's store, written here and honoured by its engine on
its next tick; `--all` (stop-the-line) is one row every engine on the store honours.
Neither waits for an engine: a freeze written while none runs is in force when one starts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from warroom.core.exit_codes import Exit
from warroom.core.freeze import Freeze, FreezeKind
from warroom.core.identity import current_actor
from warroom.core.lines import say
from warroom.core.secrets import redact
from warroom.core.units import parse_duration
from warroom.store.base import StoreError

if TYPE_CHECKING:  # the plan's model (pydantic) is imported where a plan is loaded, not by parsing the verbs
    from warroom.plan.model import Plan

UNTIL_HELP = "an ISO 8601 time with its zone (2026-11-27T18:00+01:00, …Z) or a duration from now (2h, 90m)"


def parse_until(text: str, now: float) -> float:
    """`--until`: an ISO 8601 time with a zone, or a duration from now; ValueError saying what was expected."""
    try:
        return now + parse_duration(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--until {text!r}: expected {UNTIL_HELP}") from None
    if when.tzinfo is None:
        raise ValueError(f"--until {text!r} has no zone: add one (…+01:00, …Z), so every host reads the same time")
    if when.timestamp() <= now:
        raise ValueError(f"--until {text!r} is in the past")
    return when.timestamp()


def add_freeze_parsers(verb: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The two verbs, added by main's `verb()` (PLAN and --state come with it)."""
    f = verb("freeze", "refuse step ups and scheduled advances (rollback, pause and step-down stay allowed)")
    f.add_argument("--until", help=f"when the freeze ends by itself: {UNTIL_HELP} (default: until `warroom thaw`)")
    f.add_argument("--reason", required=True, help="why, shown on every screen: `Black Friday`")
    f.add_argument("--all", action="store_true", help="stop-the-line: freeze every rollout on the plan's store (on PostgreSQL, "
                                                      "every rollout in the database), until `warroom thaw --all`")
    t = verb("thaw", "lift the rollout's freezes (journaled with who lifted them)")
    t.add_argument("--all", action="store_true", help="lift the stop-the-line instead")


def cmd_freeze(plan: Plan, args: argparse.Namespace) -> int:
    now = time.time()
    try:
        until = parse_until(args.until, now) if args.until else None
    except ValueError as exc:
        print(f"warroom: {exc}", file=sys.stderr)
        return Exit.USAGE
    if not args.reason.strip():
        print("warroom: --reason is empty: say why (it is shown on every screen)", file=sys.stderr)
        return Exit.USAGE
    from warroom.store import open_store
    from warroom.store.paths import state_path

    me = current_actor().label()
    try:
        store = open_store(state_path(plan, args.state))
        store.add_freeze(args.reason.strip(), until, me, now, every_rollout=args.all)
    except StoreError as exc:
        print(f"warroom: {redact(str(exc))}", file=sys.stderr)
        return Exit.PROBLEM
    freeze = Freeze(FreezeKind.STOP_THE_LINE if args.all else FreezeKind.AD_HOC, args.reason.strip(), now, until, me)
    scope = "every rollout on this store" if args.all else plan.rollout.name
    say(f"{freeze.banner(now)} — {scope}; its engine honours it on its next tick")
    return 0


def cmd_thaw(plan: Plan, args: argparse.Namespace) -> int:
    from warroom.store import open_store
    from warroom.store.paths import state_path

    me = current_actor().label()
    try:
        lifted = open_store(state_path(plan, args.state)).lift_freezes(me, time.time(), every_rollout=args.all)
    except StoreError as exc:
        print(f"warroom: {redact(str(exc))}", file=sys.stderr)
        return Exit.PROBLEM
    what = "stop-the-line" if args.all else f"freeze of {plan.rollout.name}"
    if not lifted:
        say(f"no {what} in force")
        return 0
    for row in lifted:
        say(f"lifted the {what} by {row.by} ({row.reason}); lifted by {me}")
    return 0
