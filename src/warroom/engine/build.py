"""Assemble an Engine from a plan: store, flag provider, sources, clock."""

from __future__ import annotations

from pathlib import Path

from .. import notify
from ..flags.registry import make_provider
from ..identity import Actor, current_actor
from ..plan import Fault, Plan
from ..sim_queries import query_models
from ..sources.registry import make_source
from ..store import Store, default_state_path
from .clock import Clock, RealClock
from .engine import Engine


def state_path(plan: Plan, override: str | Path | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    if plan.state:
        return plan.resolve_path(plan.state)
    return default_state_path(plan.rollout.name)


def runbook_dry_run(plan: Plan) -> tuple[bool, str]:
    """Whether the rollback runbook is only journaled, not executed, and why."""
    if plan.rollback.dry_run is not None:
        return plan.rollback.dry_run, "rollback.dry_run in the plan"
    if plan.rollout.environment == "drill":
        return True, "the environment is drill"
    if all(source.type == "simulator" for source in plan.sources.values()):
        return True, "every source is the simulator; `rollback: {dry_run: false}` runs it for real"
    return False, "the numbers are real"


def build_engine(
    plan: Plan,
    *,
    state: str | Path | None = None,
    clock: Clock | None = None,
    actor: Actor | None = None,
    readonly: bool = False,
    automation: bool = True,
    dry_run_steps: bool | None = None,
    extra_faults: tuple[Fault, ...] = (),
    announce: bool = True,
    backfill: bool = True,
) -> Engine:
    store = Store(state_path(plan, state))
    provider = make_provider(plan.flag_provider, plan.base_dir)
    sources = {}
    for name, config in plan.sources.items():
        # The simulator answers the plan's own queries through each pane's model (sim_queries).
        extra = {"extra_faults": extra_faults, "models": query_models(plan)} if config.type == "simulator" else {}
        sources[name] = make_source(name, config, plan.base_dir, **extra)
    engine = Engine(
        plan,
        store,
        provider,
        sources,
        clock or RealClock(),
        actor=actor or current_actor(),
        readonly=readonly,
        automation=automation,
        dry_run_steps=runbook_dry_run(plan)[0] if dry_run_steps is None else dry_run_steps,
        announce=announce,
        backfill=backfill,
    )
    # Every mode builds its engine here, so every mode tells the plan's channels what it commits.
    notify.attach(engine)
    return engine
