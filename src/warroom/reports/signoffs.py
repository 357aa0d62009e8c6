"""The post-mortem's sign-off table: role, person, answer, when and on what evidence, from the decision
record, and whether that record is intact (core/decision_chain.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from warroom.core.decision_chain import verify
from warroom.core.journal_kinds import CHAINED, Kind
from warroom.store import Store

HEAD = ["role", "person", "answer", "when (UTC)", "for", "on what evidence"]
ANSWERS: dict[str, str] = {Kind.APPROVAL_GIVEN: "approved", Kind.APPROVAL_REJECTED: "rejected", Kind.GO_NO_GO: ""}


@dataclass(frozen=True)
class SignOff:
    role: str
    person: str
    answer: str
    ts: float
    change: str  # the phase and exposures it was given for
    evidence: str  # the guardrail values seen, the note; for the go/no-go, each criterion


def sign_offs(store: Store) -> Iterator[SignOff]:
    for e in store.iter_entries(kinds=tuple(ANSWERS)):
        data = e.data
        person = str((data.get("actor") or {}).get("user") or e.actor)
        if e.kind == Kind.GO_NO_GO:
            criteria = "; ".join(f"{c.get('criterion')}: {'pass' if c.get('passed') else 'FAIL'} ({c.get('detail')})"
                                 for c in data.get("criteria") or ())
            yield SignOff("go/no-go", person, str(data.get("decision")), e.ts, "the first exposure", criteria)
            continue
        seen = ", ".join(f"{g} {v:.4g}" if isinstance(v, (int, float)) else f"{g} no data" for g, v in (data.get("evidence") or {}).items())
        note = str(data.get("note") or "")
        exposures = ", ".join(f"{n} {v}" for n, v in (data.get("exposures") or {}).items())
        yield SignOff(", ".join(data.get("roles") or ()), person, ANSWERS[e.kind], e.ts, f"phase {data.get('phase')} ({exposures})",
                      "; ".join(x for x in (f"guardrails: {seen}" if seen else "", f"note: {note}" if note else "") if x))


def record_state(store: Store) -> str:
    """`intact (N decision entries)`, or what `warroom verify` would say is wrong."""
    head = str(store.load_state()[1].get("chain") or "")
    checked, breaks = verify(((e.seq, e.kind, e.message, e.data) for e in store.iter_entries(kinds=CHAINED)), head)
    if not breaks:
        return f"intact ({checked} decision entries, each linked to the one before)"
    return "ALTERED: " + "; ".join(f"entry {b.seq or 'after the last'}: {b.problem}" for b in breaks)


