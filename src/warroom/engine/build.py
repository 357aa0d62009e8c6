"""Assemble an Engine from a plan: store, lease, flag provider, sources, clock."""

from __future__ import annotations

from warroom.core.clock import Clock, RealClock
from warroom.engine.engine import Engine
from warroom.engine.lease import LEASE_TTL, Lease, this_process
from warroom.flags.registry import make_provider
from warroom.outbound import notify
from warroom.plan.faults import Fault
from warroom.plan.model import Plan
from warroom.sources.registry import make_source
from warroom.sources.simulator.queries import query_models
from warroom.store import open_store
from warroom.store.base import Store
from warroom.store.paths import StateRef, engine_log_path, state_path, update_archive_path
from warroom.store.thread import StoreThread


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
    state: str | StateRef | None = None,
    store: Store | None = None,
    clock: Clock | None = None,
    lease_ttl: float = LEASE_TTL,
    dry_run_steps: bool | None = None,
    extra_faults: tuple[Fault, ...] = (),
    backfill: bool = True,
) -> Engine:
    """The engine of this plan's rollout; `start()` takes its lease (or says who drives)."""
    path = state_path(plan, state)
    store = store or open_store(path)
    provider = make_provider(plan.flag_provider, plan.base_dir)
    sources = {}
    for name, config in plan.sources.items():
        # The simulator answers the plan's own queries through each pane's model (sim_queries).
        extra = {"extra_faults": extra_faults, "models": query_models(plan)} if config.type == "simulator" else {}
        sources[name] = make_source(name, config, plan.base_dir, **extra)
    clock = clock or RealClock()
    speed = "max" if clock.speed == float("inf") else f"{clock.speed:g}"
    thread = StoreThread(store)  # the engine's every store call goes through it: its loop never waits on the store
    lease = Lease(thread, this_process(), ttl=lease_ttl, speed=speed, log_path=str(engine_log_path(path)))
    engine = Engine(plan, thread, provider, sources, clock, lease=lease,
                    dry_run_steps=runbook_dry_run(plan)[0] if dry_run_steps is None else dry_run_steps, backfill=backfill,
                    archive=update_archive_path(plan, path))
    # Every mode builds its engine here, so every mode tells the plan's channels what it commits.
    notify.attach(engine)
    return engine
