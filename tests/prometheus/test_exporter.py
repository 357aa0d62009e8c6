"""The `warroom simulate --serve` exporter as a real process: exposition by cohort, exposure
through the plan's own flag provider, runtime faults over HTTP (scaled by exposure or shared)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from itertools import pairwise

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.helpers import free_port
from tests.support.servers import _stop, http_get, http_send, write_flags
from tests.support.waiting import until
from warroom.core.flagstate import FlagState
from warroom.drills.exporter import BUCKETS
from warroom.flags.registry import make_provider
from warroom.plan.sources import FlagProviderConfig
from warroom.sources.simulator.model import ServiceModel, cdf_at, latency_cdf, mixture_quantile


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = http_get(url + "/metrics")
    assert status == 200, body
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def ws_total(url: str) -> float:
    return sum(v for (name, _), v in scrape(url).items() if name == "warroom_sim_ws_connections")


def served(url: str, since: dict, count: Callable[[dict], float], at_least: float) -> dict:
    """The first scrape in which `count` is `at_least` above what it was in `since`: counters move
    with the exporter's own clock at each scrape, however slowly the test gets to look."""
    def moved() -> dict | None:
        samples = scrape(url)
        return samples if count(samples) - count(since) >= at_least else None

    return until(f"the exporter to serve {at_least:g} more", moved)


def requests(samples: dict, cohort: str | None = None) -> float:
    return sum(v for (name, labels), v in samples.items()
               if name == "warroom_sim_http_requests_total" and cohort in (None, dict(labels)["cohort"]))


def errors_by_cohort(samples) -> dict[str, tuple[float, float]]:
    """cohort → (5xx, all requests) from the request counters."""
    out: dict[str, tuple[float, float]] = {}
    for (name, labels), value in samples.items():
        if name == "warroom_sim_http_requests_total":
            label = dict(labels)
            bad, total = out.get(label["cohort"], (0.0, 0.0))
            out[label["cohort"]] = (bad + value * label["code"].startswith("5"), total + value)
    return out


def test_latency_distribution_has_the_models_quantiles():
    knots = latency_cdf(0.02, 0.06, 0.12)
    assert [cdf_at(knots, x) for x in (0.02, 0.06, 0.12)] == [0.5, 0.95, 0.99]
    # A fault that sets p95 above p99 still gives a monotonic distribution.
    faulty = latency_cdf(0.02, 0.8, 0.12)
    assert all(x0 < x1 and f0 <= f1 for (x0, f0), (x1, f1) in pairwise(faulty))
    assert BUCKETS[0] <= 0.005 and BUCKETS[-1] >= 10


def test_exposition_has_the_metrics_the_canonical_queries_name(exporter_factory):
    exporter = exporter_factory(25.0)
    samples = scrape(exporter.url)
    names = {name for name, _ in samples}
    assert {
        "warroom_sim_http_requests_total", "warroom_sim_request_duration_seconds_bucket",
        "warroom_sim_ws_connections", "warroom_sim_ws_connect_attempts_total",
        "warroom_sim_cpu_ratio", "warroom_sim_memory_ratio",
    } <= names
    codes = {dict(labels)["code"] for name, labels in samples if name == "warroom_sim_http_requests_total"}
    assert codes == {"200", "404", "500", "503"}
    # Requests, latency and connections come per cohort: the new code's users and the others.
    for metric in ("warroom_sim_http_requests_total", "warroom_sim_request_duration_seconds_bucket",
                   "warroom_sim_ws_connect_attempts_total", "warroom_sim_ws_connections"):
        assert {dict(labels)["cohort"] for name, labels in samples if name == metric} == {"new", "control"}, metric
    # Counters only go up between scrapes.
    key = ("warroom_sim_http_requests_total", (("code", "200"), ("cohort", "control")))
    until("the control cohort's 200s to count up", lambda: scrape(exporter.url)[key] > samples[key])


def test_exposure_follows_the_flag_store(exporter_factory):
    exporter = exporter_factory(0.0)
    assert ws_total(exporter.url) == 0  # nobody on the new WebSocket path yet
    write_flags(exporter.flags, 50.0)
    # ~6000 connections at 50 % (12000 at 100 %, ±5 % noise); re-read within about a second.
    until("exposure 50 % to show", lambda: 5000 < ws_total(exporter.url) < 7000)


def test_runtime_faults_over_http(exporter_factory):
    exporter = exporter_factory(25.0)
    # A shared dependency (not the new code): every user's numbers, whatever the exposure.
    status, body = http_send("POST", exporter.url + "/fault", {"metric": "cpu", "mode": "set", "value": 0.93, "while_exposed": False})
    assert status == 201 and body["added"]["metric"] == "cpu"
    cpu = [v for (name, _), v in scrape(exporter.url).items() if name == "warroom_sim_cpu_ratio"]
    assert sum(cpu) / len(cpu) == 0.93
    status, listed = http_send("GET", exporter.url + "/fault")
    assert status == 200 and len(listed["runtime"]) == 1
    assert listed["runtime"][0]["scope"].startswith("shared dependency")
    assert http_send("DELETE", exporter.url + "/fault") == (200, {"removed": 1})
    cpu = [v for (name, _), v in scrape(exporter.url).items() if name == "warroom_sim_cpu_ratio"]
    assert sum(cpu) / len(cpu) < 0.5


def test_a_bad_fault_is_refused_with_the_reason(exporter_factory):
    exporter = exporter_factory(25.0)
    status, body = http_send("POST", exporter.url + "/fault", {"metric": "cpu", "mode": "explode"})
    assert status == 400 and body["error"].startswith("mode:")


def test_a_dark_fault_takes_the_metrics_endpoint_down(exporter_factory):
    exporter = exporter_factory(25.0)
    assert http_send("POST", exporter.url + "/fault", {"mode": "dark", "duration": "2s"})[0] == 201
    assert http_get(exporter.url + "/metrics")[0] == 503
    until("the dark spell to end", lambda: http_get(exporter.url + "/metrics")[0] == 200)


def test_a_fault_of_the_new_code_scales_with_exposure(exporter_factory):
    # Half the new code's requests fail; at 25 % exposure that is about an eighth of all.
    exporter = exporter_factory(25.0)
    assert http_send("POST", exporter.url + "/fault", {"metric": "error_rate", "value": 0.5})[0] == 201
    listed = http_send("GET", exporter.url + "/fault")[1]
    assert listed["runtime"][0]["scope"].startswith("new code") and listed["exposure"] == 0.25
    earlier = scrape(exporter.url)
    first = errors_by_cohort(earlier)
    last = errors_by_cohort(served(exporter.url, earlier, requests, 900))  # about a second of traffic
    rate = {c: ((last[c][0] - first[c][0]) / (last[c][1] - first[c][1])) for c in last}
    assert rate["new"] == pytest.approx(0.5) and rate["control"] < 0.001
    bad = sum(last[c][0] - first[c][0] for c in last)
    total = sum(last[c][1] - first[c][1] for c in last)
    # Requests weigh by traffic: 25 % of users on the new code send 1000/s per full share, the rest 850/s.
    share = 0.25 * 1000 / (0.25 * 1000 + 0.75 * 850)
    assert bad / total == pytest.approx(0.5 * share + 0.0004 * (1 - share), rel=0.05)


def test_rolling_back_ends_a_fault_of_the_new_code_not_a_shared_one(exporter_factory):
    exporter = exporter_factory(25.0)
    http_send("POST", exporter.url + "/fault", {"metric": "error_rate", "value": 0.5})
    http_send("POST", exporter.url + "/fault", {"metric": "memory", "value": 0.9, "while_exposed": False})
    write_flags(exporter.flags, 0.0)  # the rollback: the flag reads back off
    until("the exporter to see the flag off", lambda: http_send("GET", exporter.url + "/fault")[1]["exposure"] == 0)
    earlier = scrape(exporter.url)
    first = errors_by_cohort(earlier)
    samples = served(exporter.url, earlier, requests, 850)  # about a second of traffic
    last = errors_by_cohort(samples)
    assert last["new"][1] == first["new"][1]  # nobody is on the new code: it serves nothing, fails nothing
    assert (last["control"][0] - first["control"][0]) / (last["control"][1] - first["control"][1]) < 0.001
    memory = [v for (name, _), v in samples.items() if name == "warroom_sim_memory_ratio"]
    assert sum(memory) / len(memory) == pytest.approx(0.9)  # the shared fault is still there


def test_the_in_process_model_mixes_the_cohorts_as_prometheus_would():
    model = ServiceModel(noise=0)
    service = model.service(0, 0.25)
    knots = [(c.requests, c.latency_knots()) for c in service.cohorts]
    # At both ends the mix is one cohort: its own quantile exactly.
    assert model.value("latency_p95", 0, 0.0) == pytest.approx(0.060)
    assert model.value("latency_p95", 0, 1.0) == pytest.approx(0.090)
    p95 = mixture_quantile(0.95, knots)
    assert 0.060 < p95 < 0.090 and service.value("latency_p95") == p95
    mixed = sum(w * cdf_at(k, p95) for w, k in knots) / sum(w for w, _ in knots)
    assert mixed == pytest.approx(0.95)


def test_the_exporter_follows_the_plans_own_flag_provider(tmp_path):
    # A flagd file, written through warroom's flagd provider as the engine writes it: the
    # exporter reads it back through the same provider code (`--plan`, no --flags).
    flags = tmp_path / "flags.flagd.json"
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "rollout": {"name": "flagd-rehearsal", "environment": "staging"},
        "sources": {"prom": {"type": "prometheus", "url": "http://127.0.0.1:9"}},
        "flag_provider": {"provider": "flagd", "path": str(flags)},
        "panes": [{"id": "errors", "title": "Errors", "query": "sum(rate(x[1m]))"}],
        "phases": [{"name": "Canary", "flags": {"checkout": 5}}, {"name": "Half", "flags": {"checkout": 50}}],
    }))
    provider = make_provider(FlagProviderConfig(provider="flagd", path=str(flags)), tmp_path)
    asyncio.run(provider.write("checkout", FlagState(True, 5.0)))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "warroom", "simulate", "--serve", f"127.0.0.1:{port}", "--plan", str(plan)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stdout.readline()
        assert "flags: flagd" in banner and "flag: checkout (5%; exposure 5.00%)" in banner, banner
        url = f"http://127.0.0.1:{port}"
        assert http_send("GET", url + "/fault")[1]["phase"] == 1
        asyncio.run(provider.write("checkout", FlagState(True, 50.0)))
        until("the exporter to read 50 %", lambda: http_send("GET", url + "/fault")[1]["exposure"] == 0.5)
        assert http_send("GET", url + "/fault")[1]["phase"] == 2
        asyncio.run(provider.write("checkout", FlagState(False, 0.0)))
        until("the exporter to read the flag off", lambda: http_send("GET", url + "/fault")[1]["exposure"] == 0)
    finally:
        _stop(proc)


def sessions(url: str) -> dict[str, float]:
    return {dict(labels)["cohort"]: v for (name, labels), v in scrape(url).items() if name == "warroom_sim_sessions_total"}


def test_sessions_split_by_the_exposure(exporter_factory):
    # The units the flag assigns: the exposure check tests the new cohort's share of them.
    exporter = exporter_factory(25.0)
    looked = time.monotonic()
    first = sessions(exporter.url)
    last = until("a second's sessions (200)", lambda: (s := sessions(exporter.url)) and sum(s.values()) - sum(first.values()) >= 200 and s)
    new, control = (last[c] - first[c] for c in ("new", "control"))
    assert new / (new + control) == pytest.approx(0.25, rel=1e-6)
    # 200 sessions a second, ±5 % noise: never more than that over the time the two scrapes spanned.
    assert new + control <= 200 * 1.05 * (time.monotonic() - looked)


def test_a_flag_that_does_not_reach_the_service(exporter_factory):
    exporter = exporter_factory(25.0, "--ignore-flag")
    listed = http_send("GET", exporter.url + "/fault")[1]
    # The flag reads 25 %, the service keeps everyone on the old code.
    assert listed["flag_ignored"] is True and listed["flag_state"] == "25%" and listed["exposure"] == 0
    first = sessions(exporter.url)
    last = until("sessions to count up", lambda: (s := sessions(exporter.url))["control"] > first["control"] and s)
    assert last["new"] == first["new"] == 0
    assert errors_by_cohort(scrape(exporter.url))["new"][1] == 0
