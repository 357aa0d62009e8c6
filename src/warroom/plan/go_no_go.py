"""Go/no-go: the recorded decision before the first exposure, from criteria of three kinds.

- metric: a query against a threshold, like a gate (`{metric: {pane: errors, below: 0.1%}}`);
- manual: a role answers (`{manual: release}`: one of its members approves, or rejects);
- external: a command's exit status or an HTTP 200 (`{external: {command: [make, ci-green]}}`,
  `{external: {http: https://ci/health}}`).
Every criterion and its approvals evaluate into one GO or NO-GO, journaled with who answered what.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from warroom.plan.approvals import Approval
from warroom.plan.conditions import Gate
from warroom.plan.fields import Ident, PositiveDuration, Strict
from warroom.plan.urls import refuse_password


class External(Strict):
    command: Annotated[list[str], Field(min_length=1)] | None = None
    # What it prints and the URL are never journaled; a password in the URL would still be in the plan file.
    http: Annotated[str, BeforeValidator(refuse_password("a go/no-go check is a plain GET: point it at an endpoint that needs none")),
                    Field(pattern=r"^https?://\S+$")] | None = None
    timeout: PositiveDuration = 30.0

    @model_validator(mode="after")
    def _one(self) -> External:
        if (self.command is None) == (self.http is None):
            raise ValueError("give `command` (its exit status 0 is a pass) or `http` (a 200 is a pass), one of them")
        return self


class Criterion(Strict):
    name: str
    metric: Gate | None = None
    manual: Ident | None = None  # a role
    external: External | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Criterion:
        if sum(x is not None for x in (self.metric, self.manual, self.external)) != 1:
            raise ValueError("a criterion is one of `metric` (a query and a threshold), `manual` (a role answers) "
                             "or `external` (a command or an HTTP check)")
        return self

    @property
    def kind(self) -> str:
        return "metric" if self.metric is not None else "manual" if self.manual is not None else "external"


class GoNoGo(Strict):
    criteria: list[Criterion] = []
    approvals: Approval | None = None
    timeout: PositiveDuration | None = None  # for the manual criteria, when `approvals` gives none

    def approval(self) -> Approval | None:
        """The sign-off the decision waits for: `approvals`, with each manual criterion's role (one person) added."""
        manual = {c.manual: 1 for c in self.criteria if c.manual is not None}
        if self.approvals is None and not manual:
            return None
        base = self.approvals or Approval(roles={}, timeout=self.timeout)
        return base.model_copy(update={"roles": {**manual, **base.roles}})
