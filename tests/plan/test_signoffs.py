"""Roles, approvals and the go/no-go in the plan: bad sign-off tables are located `check` errors."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from tests.conftest import BASE_PLAN
from warroom.core.approvals import OnTimeout
from warroom.plan.load import parse_plan
from warroom.plan.yamlfile import PlanError

ROLES = {"security": {"members": ["carol", "dave"]}, "release": {"members": ["alice"]}}


def plan_text(phase_approvals: dict | None = None, go_no_go: dict | None = None, roles: dict | None = None) -> str:
    data = yaml.safe_load(BASE_PLAN)
    data["roles"] = ROLES if roles is None else roles
    if phase_approvals is not None:
        data["phases"][1]["approvals"] = phase_approvals
    if go_no_go is not None:
        data["go_no_go"] = go_no_go
    return yaml.safe_dump(data, sort_keys=False)


def problems(text: str) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_plan(text, "plan.yaml")
    return [str(p) for p in info.value.problems]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_sign_off_table_loads_with_its_go_no_go():
    text = plan_text({"roles": {"security": 2}, "timeout": "15m", "on_timeout": "rollback"},
                     {"criteria": [{"name": "release says go", "manual": "release"},
                                   {"name": "CI green", "external": {"command": ["true"]}},
                                   {"name": "errors low", "metric": {"pane": "errors", "below": 0.01}}],
                      "timeout": "30m"})
    plan = parse_plan(text, "plan.yaml")
    phase = plan.phases[1].approvals
    assert phase is not None and phase.roles == {"security": 2} and phase.timeout == 900 and phase.on_timeout is OnTimeout.ROLLBACK
    first = plan.approval_for(1)
    assert first is not None and first.roles == {"release": 1} and first.timeout == 1800 and first.on_timeout is OnTimeout.HOLD
    assert [c.kind for c in plan.go_no_go.criteria] == ["manual", "external", "metric"]
    assert plan.approval_for(3) is None


def test_unknown_role_is_located_with_a_suggestion():
    text = plan_text({"roles": {"securty": 1}})
    [found] = problems(text)
    assert found.startswith(f"plan.yaml:{line_of(text, 'securty')}:")
    assert "phases[1].approvals.roles.securty: unknown role 'securty' (did you mean security?" in found


def test_an_empty_quorum_is_located():
    text = plan_text({"roles": {}})
    [found] = problems(text)
    assert found.startswith(f"plan.yaml:{line_of(text, 'roles: {}')}:")
    assert "phases[1].approvals.roles: no role is asked" in found
    zero = plan_text({"roles": {"security": 0}})
    [found] = problems(zero)
    assert "phases[1].approvals.roles.security: a quorum of 0 asks nobody" in found


def test_a_quorum_larger_than_its_role_is_located():
    text = plan_text({"roles": {"security": 3}})
    [found] = problems(text)
    assert found.startswith(f"plan.yaml:{line_of(text, 'security: 3')}:")
    assert "a quorum of 3 can never be met: role 'security' has 2 member(s) (carol, dave)" in found


def test_an_unknown_timeout_action_is_located():
    text = plan_text({"roles": {"security": 1}, "on_timeout": "explode"})
    [found] = problems(text)
    assert found.startswith(f"plan.yaml:{line_of(text, 'on_timeout')}:")
    assert "phases[1].approvals.on_timeout: Input should be 'hold', 'abort' or 'rollback' (got 'explode')" in found


def test_go_no_go_names_known_roles_and_one_kind_per_criterion():
    text = plan_text(go_no_go={"criteria": [{"name": "ops", "manual": "operations"}]}, roles={**ROLES, "nobody": {"members": []}})
    found = problems(text)
    assert any("roles.nobody.members: role 'nobody' has no members" in p for p in found)
    assert any("go_no_go.criteria[0].manual: unknown role 'operations'" in p for p in found)
    two = plan_text(go_no_go={"criteria": [{"name": "two", "manual": "release", "external": {"http": "http://127.0.0.1/"}}]})
    assert any("go_no_go.criteria[0]: a criterion is one of `metric`" in p for p in problems(two))


def test_a_timeout_needs_its_unit():
    text = textwrap.dedent(plan_text({"roles": {"security": 1}, "timeout": 15}))
    [found] = problems(text)
    assert "phases[1].approvals.timeout: a number alone is not a duration" in found


def test_the_digest_moves_with_any_edit():
    plan = parse_plan(plan_text(), "plan.yaml")
    same = parse_plan(plan_text(), "other.yaml")
    edited = parse_plan(plan_text().replace("hold: 1m", "hold: 2m", 1), "plan.yaml")
    assert plan.digest() == same.digest() != edited.digest()


def test_check_says_who_signs_off_before_which_step(capsys):
    from pathlib import Path

    from warroom.cli.main import main

    assert main(["check", str(Path(__file__).resolve().parents[2] / "sample-config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "go/no-go before phase 1: metric 'Error rate in staging under 0.5%', manual 'Engineering lead says go'" in out
    assert "  into phase 3: security-lead 1 of 2 (carol|dave); within 15m, then hold" in out


def test_an_external_check_url_holds_no_password_and_the_error_never_quotes_it():
    text = plan_text(go_no_go={"criteria": [{"name": "health", "external": {"http": "https://ops:Hunter2-secret@health.example/ok"}}]})
    [found] = problems(text)
    assert "go_no_go.criteria[0].external.http: the URL holds a password" in found and "Hunter2" not in found
