"""The verbs that read the rollout and send nothing: status, journal, report (verify is cli/verify.py).

They read the store (a reader opens even a backup on a read-only file system); none of them
needs an engine running.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from warroom.client import EngineClient
from warroom.core.exit_codes import Exit
from warroom.core.identity import current_actor
from warroom.core.lines import entry_line, say, stamp
from warroom.core.snapshot import Snapshot, State
from warroom.core.units import format_duration, format_value
from warroom.store import open_store
from warroom.store.base import StoreMissing
from warroom.store.paths import StateRef, default_state_path, named_state, state_path

if TYPE_CHECKING:  # the plan's model (pydantic) is imported where a plan is loaded: never by a console attaching
    from warroom.plan.model import Plan


def client_of(plan: Plan, args: argparse.Namespace) -> EngineClient:
    """A client of this rollout's store; StoreMissing when no engine ever ran on it."""
    return EngineClient(open_store(state_path(plan, args.state), create=False), actor=current_actor())




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
        client = client_of(plan, args)
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


def cmd_report(plan: Plan, args: argparse.Namespace) -> int:
    from warroom.reports.files import run_report_command

    db = _state_to_read(plan, args)
    return Exit.USAGE if db is None else run_report_command(plan, db, fmt=args.format, output=args.output)
