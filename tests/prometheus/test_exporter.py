"""The `warroom simulate --serve` exporter as a real process: exposition, exposure from
the flag store, runtime faults over HTTP."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from tests.servers import http_get, http_send, wait_until, write_flags
from warroom.exporter import BUCKETS, cdf_at, latency_cdf


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


def test_latency_distribution_has_the_models_quantiles():
    knots = latency_cdf(0.02, 0.06, 0.12)
    assert [cdf_at(knots, x) for x in (0.02, 0.06, 0.12)] == [0.5, 0.95, 0.99]
    # A fault that sets p95 above p99 still gives a monotonic distribution.
    faulty = latency_cdf(0.02, 0.8, 0.12)
    assert all(x0 < x1 and f0 <= f1 for (x0, f0), (x1, f1) in zip(faulty, faulty[1:]))
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
    # Counters only go up between scrapes.
    before = samples[("warroom_sim_http_requests_total", (("code", "200"),))]
    time.sleep(0.3)
    assert scrape(exporter.url)[("warroom_sim_http_requests_total", (("code", "200"),))] > before


def test_exposure_follows_the_flag_store(exporter_factory):
    exporter = exporter_factory(0.0)
    assert ws_total(exporter.url) == 0  # nobody on the new WebSocket path yet
    write_flags(exporter.flags, 50.0)
    # ~6000 connections at 50 % (12000 at 100 %, ±5 % noise); re-read within about a second.
    wait_until(lambda: 5000 < ws_total(exporter.url) < 7000, 3, "exposure 50 % to show")


def test_runtime_faults_over_http(exporter_factory):
    exporter = exporter_factory(25.0)
    status, body = http_send("POST", exporter.url + "/fault", {"metric": "cpu", "mode": "set", "value": 0.93})
    assert status == 201 and body["added"]["metric"] == "cpu"
    cpu = [v for (name, _), v in scrape(exporter.url).items() if name == "warroom_sim_cpu_ratio"]
    assert sum(cpu) / len(cpu) == 0.93
    status, listed = http_send("GET", exporter.url + "/fault")
    assert status == 200 and len(listed["runtime"]) == 1
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
    wait_until(lambda: http_get(exporter.url + "/metrics")[0] == 200, 4, "the dark spell to end")
