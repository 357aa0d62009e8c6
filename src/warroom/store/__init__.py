"""The store: the bus between a rollout's engine and its clients (see store/base.py).

`open_store(ref)` picks the backend from the reference: a path is an SQLite file; the
plan's `state: postgresql://…` (a PostgresState, keyed by its rollout) is PostgreSQL,
whose module (and psycopg) is imported only then.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from warroom.store.base import Store, StoreError, StoreMissing

if TYPE_CHECKING:
    from warroom.plan.state import PostgresState

__all__ = ["Store", "StoreError", "StoreMissing", "open_store"]


def open_store(ref: str | Path | PostgresState, *, create: bool = True, readonly: bool = False) -> Store:
    """The store at `ref`. Only an engine creates one (`create`); a client finding none gets StoreMissing.
    A reader that never writes (`journal`, `report`) opens it `readonly`: a backup on a read-only
    file system, a SELECT-only role.

    The plan's model is imported only for a PostgreSQL reference: a console attaching to an
    SQLite store never pays for it (its start-up, bench/start_to_frame.py)."""
    if not isinstance(ref, str | Path):  # the plan's `state: postgresql://…`, keyed by its rollout
        from warroom.store.postgres import PostgresStore

        return PostgresStore(ref, create=create and not readonly, readonly=readonly)
    if "://" in str(ref):
        from warroom.plan.state import DATABASE_URL

        if str(ref).startswith(DATABASE_URL):  # a bare URL knows no rollout: paths.state_path keys it by the plan's
            raise StoreError(f"{ref}: a PostgreSQL state is opened with its plan, or with its rollout's name (--rollout NAME)")
    from warroom.store.sqlite import SQLiteStore

    return SQLiteStore(Path(ref).expanduser(), create=create and not readonly, readonly=readonly)
