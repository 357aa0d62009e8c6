"""The post-mortem as Markdown, for the ticket: written line by line as the journal is read.

Every name, reason and message is outside text: it is shown as written, never as
emphasis, a link, a table cell's end or HTML (`markdown_safe`); only the report's own
emphasis is Markdown (`Md`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from warroom.core.journal_kinds import DECISIONS
from warroom.core.secrets import redact
from warroom.core.text import markdown_block, markdown_code, markdown_safe
from warroom.core.units import format_duration
from warroom.reports.cells import cell_renderer
from warroom.reports.postmortem import (
    FOLLOW_UPS,
    POSTMORTEM_DUE,
    SHADOW_HEAD,
    Report,
    action_why,
    breach_numbers,
    clock,
    secs,
    shadow_rows,
    summary,
    utc,
)
from warroom.reports.signoffs import HEAD as SIGN_OFF_HEAD


class Md(str):
    """Markdown the report writes itself (emphasis, code spans of escaped text): not escaped again."""


def _cell(value: str) -> str:
    return value if isinstance(value, Md) else markdown_safe(value)


def _table(head: list[str], rows: Iterable[list[str]]) -> Iterator[str]:
    yield "| " + " | ".join(head) + " |"
    yield "|" + "---|" * len(head)
    cell = cell_renderer(_cell)
    for row in rows:
        yield "| " + " | ".join([cell(c) for c in row]) + " |"
    yield ""


def _lines(r: Report) -> Iterator[str]:
    plan = r.plan
    yield f"# Post-mortem: {markdown_safe(plan.rollout.name)} ({plan.rollout.environment.upper()})"
    yield ""
    yield from _table(["", ""], ([k, v] for k, v in summary(r)))
    if r.card:
        yield from ["## Drill score card", "", *markdown_block(r.card.lines()), ""]
    yield from ["## Phases", ""]
    yield from _table(["phase", "entered", "duration", "ended by"],
                      ([f"{p.index} {p.name}", r.offset(p.start), format_duration(p.end - p.start), p.ended_by] for p in r.phases))
    yield from ["## Guardrail breaches", ""]
    yield from _table(["guardrail", "started", "value", "threshold", "for", "query", "outcome"],
                      ([b.guardrail, r.offset(b.since), *breach_numbers(b, plan), format_duration(b.for_s),
                        Md(markdown_code(b.query)), b.outcome] for b in r.breaches()))
    if r.has_shadows:
        yield from ["## Shadow guardrails", "", "Judged like the others, journaled, never acted on: what each would have done.", ""]
        yield from _table(SHADOW_HEAD, shadow_rows(r))
    yield from ["## Rollbacks", ""]
    for run in r.rollbacks:
        yield f"- {r.offset(run.intent.ts)} by **{markdown_safe(run.intent.actor)}**: {markdown_safe(run.intent.data.get('reason', ''))}"
        yield f"  - flags confirmed off after {secs(run.latency)}; {run.attempts} failed attempt(s)"
        yield from (f"  - runbook: {markdown_safe(s.message)}" for s in run.steps)
    yield from ["", "## Actions", ""]
    yield from _table(["when", "action", "who", "why", "journal"],
                      ([r.offset(e.ts), DECISIONS[e.kind], e.actor, action_why(e, r), e.message] for e in r.actions()))
    yield from ["## Checklist", ""]
    yield from _table(["phase", "item", "required", "ticked by", "when"],
                      ([str(c.phase), c.text, "yes" if c.required else "", c.ticked_by or (Md("**not ticked**") if c.required else ""),
                        r.offset(c.at) if c.at else ""] for c in r.checklist))
    yield from ["## Sign-offs", "", f"Decision record: {r.decision_record()} (`warroom verify PLAN`).", ""]
    yield from _table(SIGN_OFF_HEAD, ([s.role, s.person, s.answer, utc(s.ts), s.change, s.evidence] for s in r.sign_offs()))
    yield from ["## Timeline", ""]
    yield from _table(["when", "UTC", "what", "who", "detail"],
                      ([r.offset(e.ts), clock(e.ts), e.kind, e.actor, e.message] for e in r.timeline()))
    yield from ["## Follow-ups", "", f"To fill in at the post-mortem (due {utc(r.end + POSTMORTEM_DUE)}), then share with the team.", ""]
    for heading in FOLLOW_UPS:
        yield from [f"### {heading}", "", "- ", ""]


def markdown(r: Report) -> Iterator[str]:
    """The report, a line at a time (each redacted: a secret echoed by a server never reaches it)."""
    for line in _lines(r):
        yield redact(line) + "\n"
