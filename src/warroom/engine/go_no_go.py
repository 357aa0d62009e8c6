"""The go/no-go: before the first exposure, every criterion evaluated into one GO or NO-GO.

Metric criteria are judged like gates on this tick's readings (no data is not a pass),
manual ones by the sign-off's approvers of their role, external ones by running them.
Returns the decision as a journal entry for the façade to commit (chained, before the step).
"""

from __future__ import annotations

import asyncio
from typing import Any

from warroom.core.approvals import Request
from warroom.core.identity import Actor
from warroom.core.journal_kinds import Kind
from warroom.core.units import format_value
from warroom.engine.cohorts import ConditionQueries, judge
from warroom.engine.journal import Entry
from warroom.engine.polling import Poller
from warroom.outbound import external_checks
from warroom.plan.go_no_go import Criterion
from warroom.plan.model import Plan

GO, NO_GO = "GO", "NO-GO"


class GoNoGo:
    def __init__(self, plan: Plan, poller: Poller):
        self.plan = plan
        self.poller = poller
        self.criteria: list[Criterion] = list(plan.go_no_go.criteria) if plan.go_no_go is not None else []
        self.queries = {i: ConditionQueries.of(plan, c.metric, poller.pane_keys.__getitem__)
                        for i, c in enumerate(self.criteria) if c.metric is not None}
        poller.want(*(key for q in self.queries.values() for key in q.all()))

    @property
    def wanted(self) -> bool:
        return self.plan.go_no_go is not None

    async def decide(self, request: Request | None, actor: Actor, digest: str) -> tuple[bool, Entry]:
        """(GO?, the decision entry) from every criterion and the request's approvers."""
        approvers = request.approvers() if request is not None else []
        externals = {i: c.external for i, c in enumerate(self.criteria) if c.external is not None}
        ran = dict(zip(externals, await asyncio.gather(*(external_checks.run(x) for x in externals.values())), strict=True))
        results: list[dict[str, Any]] = []
        for i, c in enumerate(self.criteria):
            if c.metric is not None:
                unit = self.plan.condition_unit(c.metric)
                judged = judge(c.metric, unit, self.queries[i], self.poller.readings, 1, 0.0)
                passed = judged.value is not None and not judged.bad
                detail = format_value(judged.value, unit) if judged.value is not None else f"no data ({judged.detail})"
                results.append({"criterion": c.name, "kind": c.kind, "passed": passed, "detail": detail})
            elif c.manual is not None:
                who = [g.person for g in approvers if c.manual in g.roles]
                results.append({"criterion": c.name, "kind": c.kind, "passed": bool(who), "answered_by": who,
                                "detail": f"approved by {', '.join(who)}" if who else f"no one of {c.manual} approved"})
            else:
                passed, detail = ran[i]
                results.append({"criterion": c.name, "kind": c.kind, "passed": passed, "detail": detail})
        go = all(r["passed"] for r in results)
        word = GO if go else NO_GO
        failing = [f"{r['criterion']} ({r['detail']})" for r in results if not r["passed"]]
        people = [{"person": g.person, "roles": list(g.roles), "at": g.at, "note": g.note} for g in approvers]
        message = f"{word} for the first exposure: {sum(r['passed'] for r in results)}/{len(results)} criteria pass" + (
            f"; failing: {'; '.join(failing)}" if failing else "") + (
            f"; signed off by {', '.join(g.person for g in approvers)}" if approvers else "")
        return go, (Kind.GO_NO_GO, message, actor, {"decision": word, "criteria": results, "approvers": people, "digest": digest,
                                                    "request": request.id if request is not None else None})
