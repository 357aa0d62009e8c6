"""The example plans load, and a provider's own settings are validated with YAML locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from warroom.plan.load import load_plan, parse_plan
from warroom.plan.yamlfile import PlanError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(("name", "provider"), [("http-flags", "http"), ("unleash", "unleash"), ("flagd", "flagd")])
def test_example_plans_load(name, provider):
    plan = load_plan(EXAMPLES / f"{name}.yaml")
    assert plan.flag_provider.provider == provider
    assert plan.flag_names() == ["realtime-features", "websocket_simple", "health_simple"]


@pytest.mark.parametrize(
    ("typo", "where"),
    [
        ("  tokn: env:UNLEASH_ADMIN_TOKEN\n", ("flag_provider.tokn", "unknown key")),
        ("  token: '*:*.plain-secret'\n", ("flag_provider.token", "expected a secret reference")),
    ],
)
def test_provider_settings_are_strict_and_located(typo, where):
    text = (EXAMPLES / "unleash.yaml").read_text().replace("  token: env:UNLEASH_ADMIN_TOKEN\n", typo)
    with pytest.raises(PlanError) as info:
        parse_plan(text, "unleash.yaml")
    field, message = where
    (problem,) = [p for p in info.value.problems if p.field == field]
    assert message in problem.message
    assert text.splitlines()[problem.line - 1] == typo.rstrip("\n")  # located on the bad key's own line
