"""Where a rollout's files live: its state (the store) and its engine's log."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from warroom.store.base import StoreError, StoreMissing

if TYPE_CHECKING:
    from warroom.plan.model import Plan
    from warroom.plan.state import PostgresState

# Where a rollout's store is: an SQLite file, or its rows in a PostgreSQL database. (The plan's
# model is imported only where a plan is at hand: a console attaching to its engine never needs it.)
StateRef: TypeAlias = "Path | PostgresState"


def default_state_path(rollout_name: str) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "warroom"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in rollout_name)
    return base / f"{safe}.sqlite"


def state_path(plan: Plan, override: str | Path | PostgresState | None = None) -> StateRef:
    """The plan's state: `--state`, else the plan's `state`, else one per rollout name in the user state dir.

    A `--state postgresql://…` keeps the plan's password and TLS options when the plan's
    state is on PostgreSQL too (the engine `up` starts gets the URL, not the secret)."""
    from pydantic import ValidationError

    from warroom.plan.state import DATABASE_URL, PostgresState
    from warroom.plan.yamlfile import PlanError, Problem

    name = plan.rollout.name
    if isinstance(override, PostgresState):
        return override
    if override and str(override).startswith(DATABASE_URL):
        base = plan.state if isinstance(plan.state, PostgresState) else None
        try:
            return PostgresState.model_validate({**(base.model_dump() if base else {}), "url": str(override)}).keyed(name)
        except ValidationError as exc:
            # The URL may hold a password: the message never repeats the value.
            raise PlanError([Problem("--state", 1, 1, "state.url", "; ".join(e["msg"] for e in exc.errors()))]) from None
    if override:
        return Path(override).expanduser()
    if isinstance(plan.state, PostgresState):
        return plan.state.keyed(name)
    if plan.state:
        return plan.resolve_path(plan.state)
    return default_state_path(name)


def named_state(ref: str, rollout: str | None = None) -> StateRef:
    """A state named without a plan (`warroom journal --state REF`): an SQLite file, or a PostgreSQL
    database and the rollout to read there: `rollout`, else the only one the database holds. The
    password comes from libpq's own ways (PGPASSWORD, ~/.pgpass), as a plan's `state` without one."""
    from pydantic import ValidationError

    from warroom.plan.state import DATABASE_URL, PostgresState

    if not ref.startswith(DATABASE_URL):
        return Path(ref).expanduser()
    try:
        state = PostgresState(url=ref)
    except ValidationError as exc:  # the message never repeats the URL (it may hold a password)
        raise StoreError("--state: " + "; ".join(e["msg"] for e in exc.errors())) from None
    if rollout:
        return state.keyed(rollout)
    from warroom.store.postgres import rollouts  # psycopg only for a database

    found = rollouts(state)
    if len(found) == 1:
        return state.keyed(found[0])
    if not found:
        raise StoreMissing(f"{state.url}: no rollout is recorded in this database (no engine has run on it)")
    shown = ", ".join(found[:20]) + (" …" if len(found) > 20 else "")
    raise StoreError(f"{state.url} holds {len(found)} rollouts ({shown}): name one with --rollout NAME")


def engine_log_path(state: StateRef) -> Path:
    """The engine's log, next to its state: `launch.sqlite` → `launch.engine.log`; for a
    database, in the user state dir under the rollout's name (each host its own)."""
    if not isinstance(state, Path):  # a database: no folder of its own
        state = default_state_path(state.rollout or "rollout")
    return state.with_name((state.stem if state.suffix in (".sqlite", ".db") else state.name) + ".engine.log")


def update_archive_path(plan: Plan, state: StateRef) -> Path:
    """Where published stakeholder updates are archived as HTML: the plan's `updates.archive`, else beside
    the state (`launch.sqlite` → `launch.updates/`; a database's in the user state dir, as its engine log)."""
    if plan.updates is not None and plan.updates.archive:
        return plan.resolve_path(plan.updates.archive)
    log = engine_log_path(state)
    return log.with_name(log.name.removesuffix(".engine.log") + ".updates")


def state_argument(state: StateRef) -> str:
    """How `--state` names it on an engine's command line (never a secret: the URL has none)."""
    return str(state.resolve()) if isinstance(state, Path) else state.url
