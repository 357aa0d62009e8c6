"""The store: the bus between a rollout's engine and its clients (see store/base.py).

`open_store(ref)` picks the backend from the reference: a path is an SQLite file.
"""

from __future__ import annotations

from pathlib import Path

from .base import Store, StoreError, StoreMissing

__all__ = ["Store", "StoreError", "StoreMissing", "open_store"]


def open_store(ref: str | Path, *, create: bool = True) -> Store:
    """The store at `ref`. Only an engine creates one (`create`); a client finding none gets StoreMissing."""
    text = str(ref)
    if text.startswith(("postgresql://", "postgres://")):
        raise StoreError(f"{text.split('@')[-1]}: a PostgreSQL store is not available in this version of warroom")
    from .sqlite import SQLiteStore

    return SQLiteStore(Path(text).expanduser(), create=create)
