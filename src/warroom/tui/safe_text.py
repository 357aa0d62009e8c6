"""Text from plans, servers and users is data on this screen: never markup, never raw
control characters.

Every string of a snapshot (flag names, Prometheus errors, checklist items, journal
messages and their data) passes `terminal_safe` once, when the snapshot reaches the
console, so no widget, dialog or palette entry can forget to. Widgets then draw it as
Rich `Text` or Textual `Content`, which never parse markup: `exp[/]v2` and
`Check [PROD] dashboards` show as written.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import TypeVar, cast

from warroom.core.snapshot import JournalEntry, Snapshot
from warroom.core.text import terminal_safe

T = TypeVar("T")
_SCALARS = (int, float, bool, type(None))


def clean(value: T) -> T:
    """`value` with every string in it made terminal-safe (dataclasses, tuples, lists, dicts)."""
    if isinstance(value, (*_SCALARS, Enum)):  # an enum (a StrEnum too) is warroom's own word, never outside text
        return value
    # Each branch rebuilds a value of the type it was given: the casts say so to the type checker.
    if isinstance(value, str):
        return cast(T, terminal_safe(value))
    if isinstance(value, tuple):
        if all(isinstance(v, _SCALARS) for v in value):  # a sparkline's history: nothing to clean
            return value
        return cast(T, tuple(clean(v) for v in value))
    if isinstance(value, list):
        return cast(T, [clean(v) for v in value])
    if isinstance(value, dict):
        return cast(T, {clean(k): clean(v) for k, v in value.items()})
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: clean(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


class SnapshotCleaner:
    """`clean` for the stream of snapshots a console receives. The journal is append-only,
    so each entry is cleaned once, not again with every snapshot it is still part of."""

    def __init__(self) -> None:
        self._entries: dict[int, JournalEntry] = {}

    def __call__(self, snap: Snapshot) -> Snapshot:
        entries = {e.seq: self._entries.get(e.seq) or clean(e) for e in snap.journal}
        self._entries = entries  # only the entries still shown are kept
        return dataclasses.replace(clean(dataclasses.replace(snap, journal=())), journal=tuple(entries.values()))


def markup_safe(text: object) -> str:
    """For the few Textual APIs that only take markup (the palette's help line)."""
    return terminal_safe(text).replace("[", "\\[")  # every `[`: Textual's escape() leaves `[PROD]`, its parser eats it
