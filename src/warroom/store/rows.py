"""Rows into values, and values into the text a row stores: what both dialects' rows mean."""

from __future__ import annotations

import json
from typing import Any

from warroom.core.secrets import redact
from warroom.core.snapshot import JournalEntry
from warroom.store.base import EVERY_ROLLOUT, Command, Holder, LeaseInfo, PendingAction, Row, StandbyInfo, StoredFreeze, StoredUpdate

SQLRow = tuple[Any, ...]

# The columns each query reads, in the order the converters below take them.
ENTRY = "seq, ts, kind, message, actor, action_id, data"
ACTION = "id, kind, intent, progress, created, epoch"
COMMAND = "id, created, verb, args, actor, status, message, action_id, finished, engine, epoch"
UPDATE = "id, created, due, reason, status, text, facts, by_whom, published, archive"


def instance(holder_id: str) -> str:
    """The engine instance a Holder.id ends with (`… #a1b2c3d4`)."""
    return holder_id.rpartition(" #")[2] if " #" in holder_id else ""


def entry(row: SQLRow) -> JournalEntry:
    return JournalEntry(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]))


def action(row: SQLRow) -> PendingAction:
    return PendingAction(row[0], row[1], json.loads(row[2]), json.loads(row[3]), row[4], row[5])


def command(row: SQLRow) -> Command:
    return Command(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]), row[5], row[6], row[7], row[8], row[9], row[10])


FREEZE = "id, scope, reason, until, by_whom, created, lifted, lifted_by"


def freeze(row: SQLRow) -> StoredFreeze:
    return StoredFreeze(row[0], row[1] == EVERY_ROLLOUT, row[2], row[3], row[4], row[5], row[6], row[7] or "")


def lease(row: SQLRow | None) -> LeaseInfo | None:
    """From (epoch, holder, user, host, pid, started, acquired, heartbeat, expires, speed, log)."""
    if row is None:
        return None
    holder = Holder(row[2], row[3], row[4], row[5], instance(row[1])) if row[1] is not None else None
    return LeaseInfo(row[0], holder, row[6] or 0.0, row[7] or 0.0, row[8] or 0.0, row[9], row[10])


def standby(row: SQLRow) -> StandbyInfo:
    """From (user, host, pid, started, since, heartbeat, holder)."""
    return StandbyInfo(Holder(row[0], row[1], row[2], row[3], instance(row[6])), row[4], row[5])


def journal_text(row: Row) -> tuple[str, str, str, str]:
    """(kind, message, actor, data as JSON) as stored: message and data redacted."""
    kind, message, actor, data = row
    return str(kind), redact(message), actor, redact(json.dumps(data, default=str, sort_keys=True))


def state_text(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True)


def update(row: SQLRow) -> StoredUpdate:
    return StoredUpdate(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7], row[8], row[9])


def update_values(u: StoredUpdate) -> tuple[Any, ...]:
    """An update's columns after its id, in UPDATE's order; its text and facts redacted like the journal's."""
    return (u.created, u.due, u.reason, u.status, redact(u.text), redact(json.dumps(u.facts, sort_keys=True, default=str)), u.by,
            u.published, u.archive)
