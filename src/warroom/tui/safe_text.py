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
    # Text already safe comes back as the very object (terminal_safe too): a value with nothing to clean is
    # kept, not rebuilt — a frozen dataclass rebuilt field by field cost a console's first frame ≈ 5 ms.
    if isinstance(value, tuple):
        if all(isinstance(v, _SCALARS) for v in value):  # a sparkline's history: nothing to clean
            return value
        items = tuple(clean(v) for v in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else cast(T, items)
    if isinstance(value, list):
        cleaned = [clean(v) for v in value]
        return value if all(a is b for a, b in zip(cleaned, value, strict=True)) else cast(T, cleaned)
    if isinstance(value, dict):
        pairs = [(clean(k), clean(v)) for k, v in value.items()]
        return value if all(a is k and b is v for (a, b), (k, v) in zip(pairs, value.items(), strict=True)) else cast(T, dict(pairs))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: clean(getattr(value, f.name)) for f in dataclasses.fields(value)}
        changed = {name: new for name, new in changes.items() if new is not getattr(value, name)}
        return dataclasses.replace(value, **changed) if changed else value
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
