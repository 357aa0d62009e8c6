"""What roles, approvals and the go/no-go mean across the plan: every role named exists and has
people, every quorum asks for at least one and at most as many people as its role has."""

from __future__ import annotations

from collections.abc import Callable

from warroom.plan.approvals import Approval
from warroom.plan.model import Plan
from warroom.plan.problems import suggestion
from warroom.plan.yamlfile import Loc

Add = Callable[[Loc, str], None]


def signoff_problems(plan: Plan, add: Add) -> None:
    for name, role in plan.roles.items():
        if not role.members:
            add(("roles", name, "members"), f"role {name!r} has no members: name the accounts (or database roles) who may sign off")
    for pi, phase in enumerate(plan.phases):
        if phase.approvals is not None:
            _approval_problems(plan, phase.approvals, ("phases", pi, "approvals"), add)
    if plan.go_no_go is not None:
        if plan.go_no_go.approvals is not None:
            _approval_problems(plan, plan.go_no_go.approvals, ("go_no_go", "approvals"), add)
        for ci, criterion in enumerate(plan.go_no_go.criteria):
            if criterion.manual is not None and criterion.manual not in plan.roles:
                add(("go_no_go", "criteria", ci, "manual"), _unknown_role(plan, criterion.manual))


def _unknown_role(plan: Plan, name: str) -> str:
    near = suggestion(name, list(plan.roles))
    return f"unknown role {name!r} (" + (f"did you mean {near}? " if near else "") + \
        f"roles defined under `roles`: {', '.join(plan.roles) or 'none'})"


def _approval_problems(plan: Plan, approval: Approval, at: Loc, add: Add) -> None:
    if not approval.roles:
        add(at + ("roles",), "no role is asked: name at least one role and how many of its people must approve (security: 1)")
    for name, quorum in approval.roles.items():
        role = plan.roles.get(name)
        if role is None:
            add(at + ("roles", name), _unknown_role(plan, name))
        elif quorum < 1:
            add(at + ("roles", name), f"a quorum of {quorum} asks nobody: at least 1 person of {name!r} must approve "
                                      "(remove the role to need no approval)")
        elif quorum > len(set(role.members)):
            add(at + ("roles", name), f"a quorum of {quorum} can never be met: role {name!r} has {len(set(role.members))} "
                                      f"member(s) ({', '.join(role.members)})")
