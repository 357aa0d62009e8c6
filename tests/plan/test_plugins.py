"""Flag providers and sources from another package: registered by entry point, loaded by name, never a traceback.

The plugin is a real distribution: a wheel built here, installed with pip into a folder
that is then put on the path, as a team would add their own flag service to warroom
without editing it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plan.acme_plugin import build_wheel
from warroom.plan import plugins
from warroom.plan.load import parse_plan
from warroom.plan.yamlfile import PlanError

ACME_PLAN = """
    rollout: {name: acme-launch, environment: drill}
    sources: {numbers: {type: acme-const, value: 0.001}}
    flag_provider: {provider: acme-notes, path: notes.json}
    state: state.sqlite
    poll_interval: 1s
    automation: {step_up: auto}
    panes: [{id: errors, title: Errors, query: errors, unit: ratio, breach: 1%}]
    guardrails: [{pane: errors, above: 1%, for: 5s}]
    phases:
      - {name: Canary, flags: {checkout: 5}, hold: 10s}
      - {name: Everyone, flags: {checkout: 100}, hold: 10s}
    """


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """acme-warroom 1.0 installed by pip into a folder of its own (no index, no build: a wheel)."""
    folder = tmp_path_factory.mktemp("acme")
    wheel = build_wheel(folder)
    target = folder / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=120)
    return target


@pytest.fixture
def installed(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(site))
    plugins.forget()
    yield site
    plugins.forget()
    for name in [m for m in sys.modules if m.startswith("acme_warroom")]:
        del sys.modules[name]


def problems(text: str) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_plan(textwrap.dedent(text), "plan.yaml")
    return [str(p) for p in info.value.problems]


def test_a_plan_using_another_packages_provider_and_source_validates(installed):
    plan = parse_plan(textwrap.dedent(ACME_PLAN), "plan.yaml")
    assert plan.sources["numbers"].type == "acme-const" and plan.flag_provider.provider == "acme-notes"
    # Their own keys are checked by their own models, located, with the nearest key suggested.
    found = problems(ACME_PLAN.replace("value: 0.001", "valeu: 0.001").replace("path: notes.json", "path: notes.json, timeot: 1"))
    assert found == [
        "plan.yaml:3:11: sources.numbers.value: this key is required",
        "plan.yaml:3:39: sources.numbers.valeu: unknown key: did you mean value? "
        "(an unknown key is an error so a typo cannot silently disable anything)",
        "plan.yaml:4:57: flag_provider.timeot: unknown key: did you mean timeout? "
        "(an unknown key is an error so a typo cannot silently disable anything)",
    ]
    # What the provider declares it can set is checked like a built-in's.
    assert problems(ACME_PLAN.replace("checkout: 5}", "checkout: 0.5}")) == [
        "plan.yaml:11:28: phases[0].flags.checkout: phase 1 'Canary' sets 'checkout' to 0.5%: the acme-notes provider "
        "sets whole percents, so 0.5% cannot be set (write 0 or 1)"]


def test_a_missing_or_broken_plugin_is_named_and_located_never_a_traceback(installed):
    assert problems(ACME_PLAN.replace("type: acme-const", "type: acme-cnost")) == [
        "plan.yaml:3:21: sources.numbers.type: unknown source type 'acme-cnost' (did you mean acme-const? known: acme-broken, "
        "acme-const, prometheus, simulator; another package adds one with an entry point in the group warroom.sources)"]
    (broken,) = problems(ACME_PLAN.replace("type: acme-const", "type: acme-broken"))
    assert broken.startswith("plan.yaml:3:21: sources.numbers.type: source type 'acme-broken' (acme_warroom.gone:Nothing "
                             "from acme-warroom 1.0) cannot be loaded: ModuleNotFoundError: No module named 'acme_warroom.gone'")
    (missing,) = problems(ACME_PLAN.replace("provider: acme-notes", "provider: acme-nots"))
    assert missing.startswith("plan.yaml:4:17: flag_provider.provider: unknown flag provider 'acme-nots' (did you mean acme-notes? ")


def test_a_plan_using_another_packages_plugins_runs(site, tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(textwrap.dedent(ACME_PLAN))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "warroom", "run", "--headless", str(plan), "--speed", "max", "--until-done"],
                         capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
    assert "Traceback" not in run.stderr and run.returncode == 0, run.stdout + run.stderr
    assert "COMPLETE" in run.stdout.splitlines()[-1]
    assert json.loads((tmp_path / "notes.json").read_text()) == {"checkout": [True, 100.0]}


def test_a_plan_using_local_flags_loads_no_http_client():
    probe = textwrap.dedent("""
        import sys
        from pathlib import Path
        from warroom.flags.registry import make_provider
        from warroom.plan.load import load_plan
        plan = load_plan("sample-config.yaml")
        make_provider(plan.flag_provider, Path("/tmp"))
        print(sorted(m for m in sys.modules if m in ("httpx", "requests", "warroom.flags.http", "warroom.flags.unleash",
                                                     "warroom.flags.flagd", "warroom.sources.prometheus")))
        """)
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=root, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
