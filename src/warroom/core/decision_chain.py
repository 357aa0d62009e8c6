"""The decision record's hash chain: each sign-off entry (core/journal_kinds.CHAINED) carries the hash
of the one before it and its own, so an entry edited or deleted in the store is found by
`warroom verify PLAN`. The newest hash is kept in the rollout's state, committed with the entry.

What is hashed is what the journal keeps of the entry: its kind, message and data (with the
proven actor), never the time the store stamped (it is the store's, not the decision's).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 16


def link(prev: str, kind: str, message: str, data: Mapping[str, Any]) -> str:
    body = json.dumps({"prev": prev or GENESIS, "kind": str(kind), "message": message, "data": data}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def sealed(prev: str, kind: str, message: str, data: Mapping[str, Any], actor: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with its link in the chain: {"chain": {"prev", "hash"}} beside the actor the journal adds."""
    digest = link(prev, kind, message, {**data, "actor": dict(actor)})
    return {**data, "chain": {"prev": prev or GENESIS, "hash": digest}}


@dataclass(frozen=True)
class Break:
    seq: int  # the journal entry where the chain breaks (0: after the last one)
    problem: str


def verify(entries: Iterable[tuple[int, str, str, Mapping[str, Any]]], head: str) -> tuple[int, list[Break]]:
    """Check (seq, kind, message, data) of every chained entry, oldest first, against the state's `head`:
    how many were checked, and where the chain breaks (an edit, a deletion, a forged entry)."""
    prev = GENESIS
    checked = 0
    breaks: list[Break] = []
    for seq, kind, message, data in entries:
        checked += 1
        body = {k: v for k, v in data.items() if k != "chain"}
        if isinstance(body.get("actor"), dict):
            body["actor"] = {k: v for k, v in body["actor"].items() if k != "driver"}  # added by the journal for the engine's own
        found = data.get("chain")
        chain: Mapping[str, Any] = found if isinstance(found, dict) else {}
        if chain.get("prev") != prev:
            breaks.append(Break(seq, "an entry before this one was deleted or altered (its link does not follow)"))
        if chain.get("hash") != link(str(chain.get("prev") or ""), kind, message, body):
            breaks.append(Break(seq, "this entry was edited after it was written (its hash does not match its content)"))
        prev = str(chain.get("hash") or "")
    if (head or GENESIS) != prev:
        breaks.append(Break(0, "the newest decision entries were deleted (the state's chain head names an entry the journal lacks)"))
    return checked, breaks
