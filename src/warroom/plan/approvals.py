"""Approvals: who must sign off before a phase begins (or the launch's go/no-go), and what a
silence means.

`roles` maps each role to the number of distinct people of it needed (its quorum); a person
counts once, for one role. The requester (who asked for the step) counts only where
`self_approval` allows. After `timeout` unanswered, `on_timeout` applies: hold (stay where
the rollout is), abort (pause it for a human) or rollback.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from warroom.core.approvals import OnTimeout
from warroom.plan.fields import Ident, PositiveDuration, Strict


class Approval(Strict):
    roles: dict[Ident, Annotated[int, Field(strict=False)]]
    self_approval: bool = False
    timeout: PositiveDuration | None = None
    on_timeout: OnTimeout = OnTimeout.HOLD
