"""`warroom check`: the plan validated, its secrets resolved, every query and flag probed once.

It builds an engine but never starts it: no lease, no state change, no journal entry.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from warroom.client import EngineClient
from warroom.core import secrets
from warroom.core.exit_codes import Exit
from warroom.core.identity import current_actor
from warroom.core.lines import say
from warroom.core.secrets import SecretError, redact
from warroom.core.text import terminal_safe
from warroom.core.units import format_value, plan_duration
from warroom.flags.base import Proof
from warroom.plan.model import Plan
from warroom.plan.timeline import timeline
from warroom.store import open_store
from warroom.store.base import Store, StoreError, StoreMissing
from warroom.store.paths import state_path


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
    from warroom.engine.build import build_engine, runbook_dry_run
    from warroom.engine.guardrails import describe

    async def go(scratch: Path) -> int:
        say(f"plan {plan.path or 'demo'}: valid ({len(plan.phases)} phases, {len(plan.panes)} panes, {len(plan.guardrails)} guardrails)")
        _print_timeline(plan)
        store, problems = _check_store(plan, args)
        # Never started (no lease, no journal); without the rollout's store it probes beside a scratch one.
        engine = build_engine(plan, state=args.state, store=store or open_store(scratch / "check.sqlite"), backfill=False)
        try:
            problems += _check_secrets(plan)
            queries, flags = await engine.probe()
            _print_sources(plan, queries)
            say("queries:")
            units = {key: plan.pane(pane).unit for pane, key in engine.poller.pane_keys.items()}
            for key, static, reading in queries:
                source_name, query, _ = key
                where = f"[{source_name}] {query}"
                if static:
                    say(f"  FAIL {where}")
                    say(f"       {static}")
                    problems += 1
                elif reading.has_value:
                    say(f"  ok   {where}")
                    # As its pane shows it (0.04%, 62 ms); a query no pane shows, as the number it is.
                    say(f"       value {format_value(reading.value, units[key]) if key in units else f'{reading.value:g}'}")
                else:
                    say(f"  {'FAIL' if reading.status == 'error' else 'WARN'} {where}")
                    say(f"       {reading.status}: {reading.detail}")
                    problems += reading.status == "error"
            # Each guardrail in words and in its pane's unit, so a threshold off by a unit shows.
            say("guardrails:")
            for i, g in enumerate(plan.guardrails):
                say(f"  {plan.guardrail_id(i)}: {describe(plan, g)}")
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
            # Proven where the provider can be asked, without changing a flag: a flag store that reads but
            # cannot be written would fail every step and keep a rollback retrying.
            writable = await engine.provider.writable(list(flags))
            say(f"  {writable.proof.value:<4} write: {redact(writable.detail)}")
            problems += writable.proof == Proof.NOT_WRITABLE
        finally:
            await engine.poller.close()
            await engine.provider.close()
            engine.store.close()
        say("check: " + ("all good" if not problems else f"{problems} problem(s)"))
        return Exit.CHECK if problems else 0

    with tempfile.TemporaryDirectory(prefix="warroom-check-") as scratch:
        return asyncio.run(go(Path(scratch)))


def _print_sources(plan: Plan, queries: list) -> None:
    """One line per source, before the queries' details: does it answer, and if not, why (once)."""
    from warroom.engine.views import source_where

    say("sources:")
    for name, source in plan.sources.items():
        mine = [(static, reading) for (source_name, _, _), static, reading in queries if source_name == name]
        failed = [static or reading.detail for static, reading in mine if static or reading.status == "error"]
        where = source_where(plan, name) or source.type
        if failed:
            say(f"  FAIL {name} ({where}): {len(failed)} of {len(mine)} queries failed: {failed[0]}")
        else:
            say(f"  ok   {name} ({where}): {len(mine)} of {len(mine)} queries answered")


def _print_timeline(plan: Plan) -> None:
    """Each phase with its exposure, soak and earliest times: a soak in the wrong unit shows before launch."""
    rows = timeline(plan)
    flag = rows[0].flag if rows else None
    say(f"timeline ({flag + ' ' if flag else ''}exposure; earliest times from the first step up, every gate green):")
    width = max(len(terminal_safe(row.name)) for row in rows)
    for row in rows:
        say(f"  {row.number}/{len(rows)} {terminal_safe(row.name):<{width}}  {row.exposure:>6g}%  soak {plan_duration(row.hold):<7} "
            f"+{plan_duration(row.earliest_start)} → +{plan_duration(row.earliest_end)}")
    say(f"  complete at the earliest +{plan_duration(rows[-1].earliest_end)} after the first step up")
    _print_sign_offs(plan)


def _print_sign_offs(plan: Plan) -> None:
    """Who must sign off before which step, and what a silence does (nothing when the plan asks nobody)."""
    lines = []
    if plan.go_no_go is not None:
        kinds = ", ".join(f"{c.kind} {c.name!r}" for c in plan.go_no_go.criteria) or "no criteria"
        lines.append(f"  go/no-go before phase 1: {kinds}")
    for number in range(1, len(plan.phases) + 1):
        approval = plan.approval_for(number)
        if approval is not None:
            who = ", ".join(f"{role} {n} of {len(plan.roles[role].members)} ({'|'.join(plan.roles[role].members)})"
                            for role, n in approval.roles.items())
            wait = f"within {plan_duration(approval.timeout)}, then {approval.on_timeout.value}" if approval.timeout else "no timeout"
            own = "; the requester may approve" if approval.self_approval else ""
            lines.append(f"  into phase {number}: {who}; {wait}{own}")
    if lines:
        say("sign-offs (warroom approve PLAN, as the account or database role the engine proves):")
        for line in lines:
            say(terminal_safe(line))


def _check_store(plan: Plan, args: argparse.Namespace) -> tuple[Store | None, int]:
    """The rollout's store: reachable, its schema, who drives and who stands by. It creates nothing."""
    ref = state_path(plan, args.state)
    say(f"state: {ref}")
    try:
        store = open_store(ref, create=False)
    except StoreMissing:
        say("  ok   no rollout recorded here yet (the first engine creates it)")
        say(f"engine: none alive (warroom up {plan.path} starts one)")
        return None, 0
    except StoreError as exc:
        say(f"  FAIL {redact(str(exc))}")
        return None, 1
    say(f"  ok   {store.describe()}")
    view = EngineClient(store, actor=current_actor()).engine(plan.poll_interval)
    say(f"engine: {view.room(pids=True)} (epoch {view.epoch}, log {view.log})" if view.alive
        else f"engine: none alive (warroom up {plan.path} starts one)" + (f"; standby: {', '.join(view.standbys)}" if view.standbys else ""))
    return store, 0


def _print_cohort_probes(engine, readings: dict) -> None:
    """Both sides of every comparison, their counts, and the exposure check's queries, side by side."""
    from warroom.engine.exposure import share_text

    lines = []
    for tracker, _ in engine.guardrails.trackers:
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


def _print_drill_check(plan: Plan) -> None:
    """What a drill of this plan can model offline (every pane, with the line to add where it cannot), and fast time."""
    from warroom.drills.session import fast_time_problem
    from warroom.sources.simulator.queries import pane_models, unmodelled_advice, unmodelled_conditions

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
