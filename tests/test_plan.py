"""Plan loading: every problem names file, line and field; nothing else ever escapes."""

from __future__ import annotations

import copy
import re
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import BASE_PLAN
from warroom.core.units import parse_duration
from warroom.plan.load import load_plan, parse_plan
from warroom.plan.yamlfile import PlanError

ROOT = Path(__file__).resolve().parent.parent


def problems(text: str) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_plan(textwrap.dedent(text), "plan.yaml")
    return [str(p) for p in info.value.problems]


def test_sample_config_is_the_seed_002_launch():
    plan = load_plan(ROOT / "sample-config.yaml")
    exposures = [phase.flags["realtime-features"].rollout for phase in plan.phases]
    assert exposures == [5, 25, 50, 75, 100]
    triggers = {(g.pane, g.op, g.threshold, g.action) for g in plan.guardrails}
    assert {("error_rate", "above", 0.01, "rollback"), ("latency_p95", "above", 0.5, "rollback"),
            ("connection_success", "below", 0.95, "rollback"), ("memory", "above", 0.8, "rollback"),
            ("cpu", "above", 0.7, "rollback")} <= triggers
    assert set(plan.flag_names()) >= {"realtime-features", "websocket_simple", "health_simple"}
    assert plan.rollback_flags()["realtime-features"].enabled is False
    # The seed's runbook: drain the WebSocket servers, previous frontend, verify health.
    runs = [step.run for step in plan.rollback.steps if hasattr(step, "run")]
    assert ["kubectl", "scale", "deployment/websocket-server", "--replicas=0"] in runs
    assert any(run[:3] == ["kubectl", "set", "image"] for run in runs)
    assert plan.rollback.steps[-1].http.url == "https://api.example.com/health"
    assert all(any(item.required for item in phase.checklist) for phase in plan.phases)


def test_examples_and_demo_load():
    from warroom.plan.demo import demo_plan

    assert demo_plan(Path("/tmp")).rollout.environment == "drill"
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        load_plan(path)


@pytest.mark.parametrize("text,expected", [
    ("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("500ms", 0.5), (90, 90),
])
def test_durations(text, expected):
    assert parse_duration(text) == expected


def test_unknown_key_is_an_error_with_its_line():
    found = problems("""
        rollout: {name: x, environment: staging}
        sources: {sim: {type: simulator}}
        flag_provider: {provider: local}
        panes: [{id: e, title: E, query: error_rate}]
        guardrails:
          - pane: e
            abvoe: 0.01
        phases: [{name: a, flags: {f: 5}}]
        """)
    assert "plan.yaml:8:5: guardrails[0].abvoe: unknown key" in found[0]


def test_bad_values_name_line_field_and_expectation():
    found = problems("""
        rollout: {name: x, environment: prod}
        sources: {sim: {type: simulator}}
        flag_provider: {provider: local, pth: f.json}
        poll_interval: soon
        phases:
          - name: a
            flags: {f: 150}
        """)
    text = "\n".join(found)
    assert "plan.yaml:2:20: rollout.environment: Input should be 'production', 'staging' or 'drill' (got 'prod')" in text
    assert "plan.yaml:5:1: poll_interval: expected a duration like 30s, 5m, 1h or 1h30m, got 'soon'" in text
    assert re.search(r"plan.yaml:8:\d+: phases\[0\].flags.f.rollout: .*less than or equal to 100", text)
    assert "plan.yaml:4:34: flag_provider.pth: unknown key" in text


def test_zero_poll_interval_and_timeouts_are_refused():
    # Polling at 0 s hammers the source and never advances a virtual-time run; a 0 s timeout fails every call.
    found = problems("""
        rollout: {name: x, environment: staging}
        sources: {prom: {type: prometheus, url: "http://127.0.0.1:9090", timeout: 0s}}
        flag_provider: {provider: http, url: "http://127.0.0.1:1", timeout: 0s}
        poll_interval: 0s
        phases: [{name: a, flags: {f: 5}}]
        rollback: {steps: [{run: ["true"], timeout: 0s}]}
        """)
    assert found == [  # in line order, the provider's own keys among the rest
        "plan.yaml:3:66: sources.prom.timeout: expected a duration like 30s, 5m, 1h or 1h30m, more than zero (got '0s')",
        "plan.yaml:4:60: flag_provider.timeout: expected a duration like 30s, 5m, 1h or 1h30m, more than zero (got '0s')",
        "plan.yaml:5:1: poll_interval: expected a duration like 30s, 5m, 1h or 1h30m, more than zero (got '0s')",
        "plan.yaml:7:36: rollback.steps[0].timeout: expected a duration like 30s, 5m, 1h or 1h30m, more than zero (got '0s')",
    ]


def test_fault_schedules_are_checked_like_the_plan(tmp_path):
    # A misspelt metric is a fault that never happens: a drill that proves nothing.
    (tmp_path / "faults.yaml").write_text("faults:\n  - metric: error-rate\n    phase: 2\n    valeu: 0.03\n")
    plan = textwrap.dedent("""
        rollout: {name: x, environment: drill}
        sources: {sim: {type: simulator, faults_file: faults.yaml, faults: [{metric: p95, at: 1m}]}}
        flag_provider: {provider: local}
        phases: [{name: a, flags: {f: 5}}]
        """)
    with pytest.raises(PlanError) as info:
        parse_plan(plan, "plan.yaml", tmp_path)
    (found,) = [str(p) for p in info.value.problems]
    assert found == ("plan.yaml:3:70: sources.sim.faults[0].metric: unknown metric (the simulator has: error_rate, latency_p50, "
                     "latency_p95, latency_p99, ws_connections, connection_success, cpu, memory, request_rate, session_rate) (got 'p95')")
    with pytest.raises(PlanError) as info:
        parse_plan(plan.replace("p95", "latency_p95"), "plan.yaml", tmp_path)
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'faults.yaml'}:2:5: faults[0].metric: unknown metric (the simulator has: error_rate, latency_p50, "
        "latency_p95, latency_p99, ws_connections, connection_success, cpu, memory, request_rate, session_rate) (got 'error-rate')",
        f"{tmp_path / 'faults.yaml'}:4:5: faults[0].valeu: unknown key: did you mean value? (an unknown key is an error "
        "so a typo cannot silently disable anything)",
    ]
    with pytest.raises(PlanError) as info:
        parse_plan(plan.replace("faults.yaml", "missing.yaml").replace("p95", "latency_p95"), "plan.yaml", tmp_path)
    assert [str(p) for p in info.value.problems] == ["plan.yaml:3:34: sources.sim.faults_file: no such file: missing.yaml"]


def test_missing_keys_point_at_the_mapping_they_belong_in():
    found = problems("""
        rollout: {environment: staging}
        sources: {sim: {type: simulator}}
        flag_provider: {provider: local}
        phases: [{name: a, flags: {f: 5}}]
        """)
    assert found == ["plan.yaml:2:1: rollout.name: this key is required"]


def test_cross_references_are_checked():
    found = "\n".join(problems("""
        rollout: {name: x, environment: staging}
        sources: {sim: {type: simulator}}
        flag_provider: {provider: nosuch}
        panes: [{id: e, title: E, query: error_rate, source: prom}]
        guardrails: [{pane: missing, above: 1}]
        phases: [{name: a, flags: {f: 5}, gates: [{pane: e, below: 1}]}]
        rollback: {flags: {g: off}}
        """))
    assert "flag_provider.provider: unknown flag provider 'nosuch'" in found
    assert "panes[0].source: unknown source 'prom' (the plan defines: sim)" in found
    assert "guardrails[0].pane: unknown pane 'missing' (panes defined: e)" in found
    assert "rollback.flags.g: flag 'g' is not set by any phase" in found


def test_secrets_must_be_references():
    found = problems("""
        rollout: {name: x, environment: staging}
        sources: {prom: {type: prometheus, url: "http://127.0.0.1:9090", auth: {bearer: s3cr3t-token}}}
        flag_provider: {provider: local}
        phases: [{name: a, flags: {f: 5}}]
        """)
    assert len(found) == 1 and "sources.prom.auth.bearer: expected a secret reference" in found[0]
    assert "s3cr3t-token" not in found[0]
    # A webhook URL is itself a secret; a credential header's value must be a reference too.
    found = problems("""
        rollout: {name: x, environment: staging}
        sources: {sim: {type: simulator}}
        flag_provider: {provider: local}
        phases: [{name: a, flags: {f: 5}}]
        rollback:
          steps:
            - {webhook: "https://hooks.slack.com/services/T0/B0/s3cr3t-hook"}
            - http: {url: "https://status.example.com/api", headers: {Authorization: "Bearer s3cr3t-token", X-Team: launch}}
        """)
    assert len(found) == 2 and not any("s3cr3t" in f for f in found)
    assert found[0].startswith("plan.yaml:8:8: rollback.steps[0].webhook: expected a secret reference")
    assert found[1].startswith("plan.yaml:9:53: rollback.steps[1].http.headers: header 'Authorization' carries a credential")


def test_thresholds_and_exposure_as_a_launch_plan_writes_them():
    plan = parse_plan(textwrap.dedent("""
        rollout: {name: x, environment: staging}
        sources: {sim: {type: simulator}}
        flag_provider: {provider: local}
        panes:
          - {id: errors, title: Errors, query: error_rate, unit: ratio, warn: 0.1%, breach: 1%}
          - {id: p95, title: p95, query: latency_p95, unit: seconds, breach: 500ms}
          - {id: p99, title: p99, query: latency_p99, unit: ms}
        guardrails:
          - {pane: errors, above: 1%, for: 30s}
          - {pane: p95, above: 500ms, for: 1m}
          - {pane: p99, above: 1.5s}
        phases: [{name: a, flags: {f: 25%}, gates: [{pane: errors, below: 0.1%}]}]
        """), "plan.yaml")
    assert [g.threshold for g in plan.guardrails] == [0.01, 0.5, 1500]
    assert (plan.panes[0].warn, plan.panes[0].breach, plan.panes[1].breach) == (0.001, 0.01, 0.5)
    assert plan.phases[0].gates[0].threshold == 0.001 and plan.phases[0].flags["f"].rollout == 25
    found = problems("""
        rollout: {name: x, environment: staging}
        sources: {sim: {type: simulator}}
        flag_provider: {provider: local}
        panes: [{id: errors, title: Errors, query: error_rate, unit: ratio}]
        guardrails: [{pane: errors, above: 500ms}]
        phases: [{name: a, flags: {f: twenty-five}}]
        """)
    assert found == [
        "plan.yaml:6:29: guardrails[0].above: expected a number in the pane's unit, or with a unit: "
        "1% (ratio or percent pane), 500ms (seconds or ms pane) (got '500ms')",
        "plan.yaml:7:28: phases[0].flags.f: expected a rollout percentage 0–100 (25 or 25%), on or off, "
        "or {enabled, rollout, segments} (got 'twenty-five')",
    ]


def test_duplicate_keys_and_bad_yaml():
    dup = problems("""
        rollout: {name: x, environment: staging}
        rollout: {name: y, environment: staging}
        """)
    assert dup == ["plan.yaml:3:1: rollout: this key appears twice in the same mapping"]
    assert problems("rollout: [unclosed\n")[0].startswith("plan.yaml:2:1: not valid YAML")
    assert problems("") == ["plan.yaml:1:1: the plan is empty; start from sample-config.yaml"]


# ------------------------------------------------------------------ hypothesis

BASE = yaml.safe_load(BASE_PLAN)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["30s", "5m", "env:X", "rollback", "above", "simulator", "local"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


PATHS = list(_paths(BASE))[1:]


@st.composite
def mutated_plans(draw):
    plan = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        parent = plan
        try:
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(values)
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=8))] = draw(values)
        except (KeyError, IndexError, TypeError):
            continue
    return yaml.safe_dump(plan, sort_keys=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_plans())
def test_generated_plans_raise_only_located_validation_errors(text):
    try:
        parse_plan(text, "gen.yaml")
    except PlanError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert re.match(r"gen\.yaml:\d+:\d+: ", str(problem)), str(problem)
            assert problem.line >= 1


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_plan_errors(text):
    try:
        parse_plan(text, "gen.yaml")
    except PlanError as exc:
        assert all(str(p).startswith("gen.yaml:") for p in exc.problems)


# ------------------------------------------------------------------ a plan that validates is safe to run

PLAN_HEAD = """
        rollout: {name: x, environment: staging}
        sources: {sim: {type: simulator}}"""


def test_a_rollback_that_leaves_a_flag_on_is_an_error_naming_the_flag_and_its_line():
    found = problems(PLAN_HEAD + """
        flag_provider: {provider: local}
        phases:
          - {name: Canary, flags: {checkout-v2: 5}}
          - name: Half
            flags: {checkout-v2: 50, checkout-v2-api: 50}
        rollback:
          flags: {checkout-v2: off}
        """)
    assert found == ["plan.yaml:10:3: rollback.flags: flag 'checkout-v2-api' is set by phase 2 'Half' (line 8) but not by the rollback, "
                     "which would leave it exposed: add `checkout-v2-api: off` (or the state it had before the launch)"]
    # Named with the state it had before the launch (on, for a flag that was on), the rollback is complete.
    plan = parse_plan(textwrap.dedent(PLAN_HEAD + """
        flag_provider: {provider: local}
        phases: [{name: a, flags: {new: 5, health: on}}]
        rollback: {flags: {new: off, health: on}}
        """), "plan.yaml")
    assert {n: s.enabled for n, s in plan.rollback_flags().items()} == {"new": False, "health": True}


@pytest.mark.parametrize("provider, flags, says", [
    ("{provider: unleash, url: 'http://127.0.0.1:4242', token: env:UNLEASH_TOKEN}", "{f: 0.1}",
     "phases[0].flags.f: phase 1 'Canary' sets 'f' to 0.1%: the unleash provider sets whole percents, so 0.1% cannot be set (write 0 or 1)"),
    ("{provider: unleash, url: 'http://127.0.0.1:4242', token: env:UNLEASH_TOKEN}", "{f: 12.5}",
     "the unleash provider sets whole percents, so 12.5% cannot be set (write 12 or 13)"),
    ("{provider: flagd, path: flags.json}", "{f: 0.005}",
     "the flagd provider sets steps of 0.01%, so 0.005% cannot be set (write 0 or 0.01)"),
    ("{provider: http, url: 'http://127.0.0.1:1', fields: {segments: null}}", "{f: {rollout: 5, segments: [beta]}}",
     "the http provider cannot target segments (beta); set flag_provider.fields.segments to the API's segments field"),
])
def test_what_the_provider_cannot_set_is_refused_with_phase_flag_and_line(provider, flags, says):
    found = problems(PLAN_HEAD + f"""
        flag_provider: {provider}
        phases:
          - name: Canary
            flags: {flags}
        """)
    assert len(found) == 1 and found[0].startswith("plan.yaml:7:13: ") and says in found[0], found


def test_what_each_provider_can_set_passes():
    for provider, flags in (("{provider: unleash, url: 'http://u', token: env:T}", "{f: 1, g: {rollout: 5, segments: [beta]}}"),
                            ("{provider: flagd, path: f.json}", "{f: 0.01, g: 33.33}"),
                            ("{provider: local}", "{f: 0.001, g: {rollout: 5, segments: [beta]}}"),
                            ("{provider: http, url: 'http://h'}", "{f: 0.1, g: {rollout: 5, segments: [beta]}}")):
        parse_plan(textwrap.dedent(PLAN_HEAD + f"""
            flag_provider: {provider}
            phases: [{{name: a, flags: {flags}}}]
            """.replace("            ", "        ")), "plan.yaml")


def test_every_provider_declares_what_it_can_set():
    from warroom.flags.base import Capabilities
    from warroom.flags.registry import provider_class, provider_names

    assert provider_names() == ["flagd", "http", "local", "unleash"]
    for name in provider_names():
        assert isinstance(provider_class(name).__dict__.get("capabilities"), Capabilities), name


def test_duplicate_phase_names_and_numeric_checklist_ids_are_errors():
    found = problems(PLAN_HEAD + """
        flag_provider: {provider: local}
        phases:
          - {name: Beta, flags: {f: 5}, checklist: [{text: a, id: "2"}, b]}
          - {name: Beta, flags: {f: 25}}
        """)
    assert found == [
        "plan.yaml:6:55: phases[0].checklist[0].id: checklist id '2' is a number, and numbers mean positions "
        "(`warroom tick PLAN 2` is the second item); use a word",
        "plan.yaml:7:6: phases[1].name: phase name 'Beta' is used twice (also phase 1); give each phase its own name",
    ]


def test_a_missing_pane_is_blamed_not_the_threshold_written_in_its_unit():
    found = problems(PLAN_HEAD + """
        flag_provider: {provider: local}
        panes: [{id: p95, title: p95, query: latency_p95, unit: seconds}]
        guardrails: [{pane: p59, above: 1s}]
        phases: [{name: a, flags: {f: 5}, gates: [{pane: nope, below: 50ms}]}]
        """)
    assert found == ["plan.yaml:6:15: guardrails[0].pane: unknown pane 'p59' (did you mean p95 (line 5)? panes defined: p95)",
                     "plan.yaml:7:44: phases[0].gates[0].pane: unknown pane 'nope' (panes defined: p95)"]


def test_durations_may_have_spaces_as_launch_plans_write_them():
    assert [parse_duration(t) for t in ("30 s", "1h 30m", " 5 m ")] == [30, 5400, 300]
    plan = parse_plan(textwrap.dedent(PLAN_HEAD + """
        flag_provider: {provider: local}
        panes: [{id: p95, title: p95, query: latency_p95, unit: seconds}]
        guardrails: [{pane: p95, above: 500 ms, for: 30 s}]
        phases: [{name: a, flags: {f: 5}, hold: 1h 30m}]
        """), "plan.yaml")
    assert (plan.guardrails[0].for_, plan.guardrails[0].threshold, plan.phases[0].hold) == (30, 0.5, 5400)
    assert "expected a duration like 30s, 5m, 1h or 1h30m, got '30 secs'" in problems(PLAN_HEAD + """
        flag_provider: {provider: local}
        phases: [{name: a, flags: {f: 5}, hold: 30 secs}]
        """)[0]


def test_a_number_ticks_that_position_even_when_items_have_ids():
    plan = parse_plan(textwrap.dedent(PLAN_HEAD + """
        flag_provider: {provider: local}
        phases:
          - name: a
            flags: {f: 5}
            checklist: [{text: Dashboards checked, id: dashboards}, {text: Support briefed, id: support}, Status page]
        """), "plan.yaml")
    phase = plan.phases[0]
    assert [phase.find_item(ref) for ref in ("1", "2", "3", "support", "page")] == ["dashboards", "support", "3", "support", "3"]
    with pytest.raises(LookupError, match=r"no single checklist item '4'; items: 1 \(dashboards\), 2 \(support\), 3"):
        phase.find_item("4")


def test_a_state_on_postgresql_short_or_with_options_and_never_with_a_password_in_it():
    from warroom.plan.state import PostgresState
    from warroom.store.paths import engine_log_path, state_path

    short = parse_plan(BASE_PLAN.replace("state: state.sqlite", "state: postgresql://warroom@db.internal:5432/launches"), "plan.yaml")
    assert short.state == PostgresState(url="postgresql://warroom@db.internal:5432/launches")
    ref = state_path(short)  # keyed by the rollout: one database serves several launches
    assert ref.rollout == "test-launch" and str(ref) == "postgresql://warroom@db.internal:5432/launches (rollout test-launch)"
    assert engine_log_path(ref).name == "test-launch.engine.log"
    full = parse_plan(BASE_PLAN.replace("state: state.sqlite", textwrap.dedent("""\
        state:
          url: postgresql://warroom@db.internal/launches
          password: env:WARROOM_DB_PASSWORD
          tls: {ca_bundle: /etc/ssl/db-ca.pem}
          rollout: checkout-eu""")), "plan.yaml")
    assert state_path(full).rollout == "checkout-eu" and state_path(full).password == "env:WARROOM_DB_PASSWORD"
    # `--state URL` keeps the plan's password and TLS (an engine started by `up` gets only the URL).
    other = state_path(full, "postgresql://warroom@db-2.internal/launches")
    assert (other.url, other.password, other.tls.ca_bundle) == ("postgresql://warroom@db-2.internal/launches",
                                                               "env:WARROOM_DB_PASSWORD", "/etc/ssl/db-ca.pem")
    found = problems(BASE_PLAN.replace("state: state.sqlite", "state: postgresql://warroom:Hunter2-Secret@db.internal/launches"))
    assert len(found) == 1 and "state.url" in found[0] and "the URL holds a password: leave it out and give state.password" in found[0]
    assert "Hunter2" not in found[0]
    found = problems(BASE_PLAN.replace("state: state.sqlite", "state: {url: 'postgresql://warroom@db/x', password: s3cret-value}"))
    assert "state.password" in found[0] and "s3cret" not in found[0]
    with pytest.raises(PlanError, match="the URL holds a password") as info:
        state_path(short, "postgresql://warroom:Hunter2-Secret@db/x")
    assert "Hunter2" not in str(info.value)


# ------------------------------------------------------------------ durations carry their unit; check prints the timeline

def test_a_bare_number_where_a_duration_is_meant_is_refused_saying_which_units():
    found = problems(PLAN_HEAD + """
        flag_provider: {provider: http, url: "http://127.0.0.1:1", timeout: 5}
        poll_interval: 5
        panes: [{id: errors, title: Errors, query: error_rate, unit: ratio}]
        guardrails: [{pane: errors, above: 1%, for: 30}]
        phases: [{name: a, flags: {f: 5}, hold: 30}]
        """)
    units = "write its unit, ms, s, m, h or d"
    assert [f.split(": ", 2)[:2] for f in found] == [["plan.yaml:4:60", "flag_provider.timeout"], ["plan.yaml:5:1", "poll_interval"],
                                                     ["plan.yaml:7:40", "guardrails[0].for"], ["plan.yaml:8:35", "phases[0].hold"]]
    assert all(f"a number alone is not a duration (30 what?): {units} (30s, 30m)" in f for f in found[2:]), found
    assert f"(5 what?): {units} (5s, 5m)" in found[1]
    # The same in a fault schedule and a drill scenario; a plan built in code keeps plain seconds.
    assert "faults[0].at: a number alone is not a duration" in problems(PLAN_HEAD.replace("type: simulator", "type: simulator, faults: [{metric: cpu, at: 60}]") + """
        flag_provider: {provider: local}
        phases: [{name: a, flags: {f: 5}}]
        """)[0]
    from warroom.drills.scenario import parse_scenario

    with pytest.raises(PlanError, match=r"timeline\[0\].at: expected a duration \(30s\) .*; a number alone is not a duration"):
        parse_scenario("name: s\ntitle: S\ntimeline: [{at: 30, metric: cpu, set: 0.9}]\n", "s.yaml")
    assert parse_plan(BASE_PLAN, "plan.yaml").model_copy(update={"poll_interval": 2}).poll_interval == 2


@pytest.mark.parametrize("line, says", [
    ("for: 99999999999999999999h", "guardrails[0].for: longer than a year (366d): no launch waits that long"),
    ("for: 1.0e+400", "guardrails[0].for: a number alone is not a duration"),
    ("above: .inf", "guardrails[0].above: expected a finite number"),
    ("above: 1.0e+300", "guardrails[0].above: a number beyond ±1e+15 is no threshold anyone means: check its unit"),
    ("evidence: {count: requests, min: .inf}", "guardrails[0].evidence.min: expected a finite number"),
])
def test_useless_durations_and_thresholds_are_refused_where_they_are(line, says):
    found = problems(PLAN_HEAD + f"""
        flag_provider: {{provider: local}}
        panes: [{{id: errors, title: Errors, query: error_rate, unit: ratio}}]
        guardrails:
          - pane: errors
            {line if line.startswith("above") else "above: 1%"}
            {line if not line.startswith("above") else "for: 30s"}
        phases: [{{name: a, flags: {{f: 5}}}}]
        """)
    assert len(found) == 1 and found[0].startswith("plan.yaml:9:") or found[0].startswith("plan.yaml:8:"), found
    assert says in found[0], found


def test_the_timeline_gives_each_phase_its_exposure_soak_and_earliest_times():
    from warroom.plan.timeline import timeline

    rows = timeline(load_plan(ROOT / "sample-config.yaml"))
    assert [(r.number, r.name, r.exposure, r.hold, r.earliest_start, r.earliest_end) for r in rows] == [
        (1, "Beta 5%", 5, 1800, 0, 1800), (2, "Beta 25%", 25, 3600, 1800, 5400), (3, "Rollout 50%", 50, 7200, 5400, 12600),
        (4, "Rollout 75%", 75, 7200, 12600, 19800), (5, "Full 100%", 100, 86400, 19800, 106200)]
    assert {r.flag for r in rows} == {"realtime-features"}


def test_check_prints_the_timeline(tmp_path):
    import shutil
    import subprocess
    import sys

    shutil.copy(ROOT / "sample-config.yaml", tmp_path / "plan.yaml")
    run = subprocess.run([sys.executable, "-m", "warroom", "check", "plan.yaml"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, stdin=subprocess.DEVNULL)
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stdout.splitlines()
    start = lines.index("timeline (realtime-features exposure; earliest times from the first step up, every gate green):")
    assert [" ".join(line.split()) for line in lines[start + 1:start + 7]] == [
        "1/5 Beta 5% 5% soak 30m +0s → +30m", "2/5 Beta 25% 25% soak 1h +30m → +1h30m", "3/5 Rollout 50% 50% soak 2h +1h30m → +3h30m",
        "4/5 Rollout 75% 75% soak 2h +3h30m → +5h30m", "5/5 Full 100% 100% soak 24h +5h30m → +29h30m",
        "complete at the earliest +29h30m after the first step up"]


def test_a_prometheus_url_with_a_password_is_refused_pointing_to_auth_never_echoing_it():
    for url in ("http://admin:Hunter2-Secret@prom.internal:9090", "https://svc:Hunter2-Secret@prom.internal/api with space"):
        found = problems(f"""
            rollout: {{name: x, environment: staging}}
            sources: {{prom: {{type: prometheus, url: "{url}"}}}}
            flag_provider: {{provider: local}}
            phases: [{{name: a, flags: {{f: 5}}}}]
            """)
        assert len(found) == 1 and found[0].startswith("plan.yaml:3:36: sources.prom.url: the URL holds a password"), found
        assert "auth: {basic: {username: NAME, password: env:PROM_PASSWORD}}" in found[0]
        assert "Hunter2" not in found[0]


# ------------------------------------------------------------------ errors in line order, each where its typo is

def test_errors_come_in_line_order_and_unknown_keys_suggest_the_key_meant():
    found = problems(PLAN_HEAD + """
        flag_provider: {provider: local, pth: flags.json}
        pol_interval: 5s
        panes: [{id: errors, title: Errors, query: error_rate, unit: ratio, braech: 1%}]
        phases: [{name: a, flags: {f: 5}, hodl: 30m}]
        zebra: 1
        """)
    assert [p.split(": ", 1)[0] for p in found] == ["plan.yaml:4:34", "plan.yaml:5:1", "plan.yaml:6:69", "plan.yaml:7:35", "plan.yaml:8:1"]
    assert [p.split(": ", 2)[2].split("?")[0] for p in found] == [
        "unknown key: did you mean path", "unknown key: did you mean poll_interval", "unknown key: did you mean breach",
        "unknown key: did you mean hold", "unknown key (check the spelling: an unknown key is an error so a typo cannot silently disable anything)"]


def test_a_misspelt_pane_id_is_blamed_on_its_own_line_not_on_the_lines_that_name_it_right():
    found = problems(PLAN_HEAD + """
        flag_provider: {provider: local}
        panes:
          - {id: erorrs, title: Errors, query: error_rate, unit: ratio}
        guardrails:
          - {pane: errors, above: 1%, for: 30s}
        phases: [{name: a, flags: {f: 5}, gates: [{pane: errors, below: 0.1%}]}]
        """)
    assert found == ["plan.yaml:6:6: panes[0].id: pane id 'erorrs' is named by no guardrail or gate, while 'errors' is named "
                     "on lines 8, 9: is this id misspelt?"]


def test_a_misspelt_pane_key_is_the_only_problem_not_its_threshold_on_the_next_line():
    found = problems(PLAN_HEAD + """
        flag_provider: {provider: local}
        panes: [{id: errors, title: Errors, query: error_rate, unit: ratio}]
        guardrails:
          - pnae: errors
            above: 1%
        phases: [{name: a, flags: {f: 5}}]
        """)
    assert found == ["plan.yaml:7:5: guardrails[0].pnae: unknown key: did you mean pane? "
                     "(an unknown key is an error so a typo cannot silently disable anything)"]
