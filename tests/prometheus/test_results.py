"""Result handling against a real Prometheus scraping the real exporter."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.servers import SCRAPE
from tests.support.waiting import until
from warroom.engine.build import build_engine
from warroom.plan.load import load_plan
from warroom.plan.sources import PrometheusSourceConfig
from warroom.sources.base import SourceContext
from warroom.sources.prometheus import PrometheusSource
from warroom.sources.registry import make_source
from warroom.sources.simulator.model import COHORT_PROMQL, PROMQL, ServiceModel

CTX = SourceContext(now=0.0, started_at=0.0, phase=1)
WINDOW = "10s"

# How close each canonical query must come to the model at 25 % exposure. The model adds
# ±5 % noise per second; rates average it out over the window, gauges do not; quantiles
# are read from buckets 20 % wide, so they are only as good as that resolution.
TOLERANCE = {
    "error_rate": 0.08, "request_rate": 0.05, "session_rate": 0.05, "connection_success": 0.01,
    "ws_connections": 0.07, "cpu": 0.07, "memory": 0.07,
    "latency_p50": 0.15, "latency_p95": 0.15, "latency_p99": 0.15,
}


@pytest.fixture
async def source(stack):
    _, server = stack
    src = make_source("service", PrometheusSourceConfig(type="prometheus", url=server.url, timeout=5), Path("."))
    yield src
    await src.close()


async def test_registry_builds_the_prometheus_source(source):
    assert isinstance(source, PrometheusSource)
    assert source.insecure is False


async def test_canonical_queries_give_the_models_values_back(source):
    # The canonical 30 s windows would need 30 s of history before rate() is right;
    # the same expressions over 10 s windows prove the exporter's rates sooner.
    assert all("[30s]" in q or "rate(" not in q for q in PROMQL.values())
    queries = [q.replace("[30s]", f"[{WINDOW}]") for q in PROMQL.values()]
    readings = await asyncio.gather(*(source.query(q, CTX) for q in queries))
    model = ServiceModel(noise=0)
    for (metric, _), reading in zip(PROMQL.items(), readings, strict=True):
        assert reading.status == "ok", (metric, reading)
        expected = model.value(metric, 0, 0.25)
        assert reading.value == pytest.approx(expected, rel=TOLERANCE[metric]), metric


async def test_cohort_queries_give_each_cohorts_values_back(source):
    # What a cohort guardrail and the exposure check ask, per cohort, against the model's cohorts at 25 %.
    service = ServiceModel(noise=0).service(0, 0.25)
    window = {"requests": 10, "sessions": 10}  # increase() over the 10 s window: the rate times 10 s
    model = {"error_rate": "error_rate", "latency_p95": "latency_p95", "requests": "request_rate", "sessions": "session_rate"}
    tolerance = {"error_rate": 0.08, "latency_p95": 0.15, "requests": 0.1, "sessions": 0.1}
    for name, query in COHORT_PROMQL.items():
        for cohort in ("new", "control"):
            text = query.replace("{cohort}", cohort).replace("[30s]", f"[{WINDOW}]").replace("[1m]", f"[{WINDOW}]")
            reading = await source.query(text, CTX)
            expected = service.cohort_value(model[name], cohort) * window.get(name, 1)
            assert reading.status == "ok", (name, cohort, reading)
            assert reading.value == pytest.approx(expected, rel=tolerance[name]), (name, cohort)


async def test_single_series_vector_and_scalar_give_a_value(source):
    vector = await source.query("sum(warroom_sim_ws_connections)", CTX)
    scalar = await source.query("scalar(sum(warroom_sim_ws_connections))", CTX)
    assert vector.status == scalar.status == "ok"
    assert vector.value == pytest.approx(scalar.value, rel=0.2)


async def test_empty_vector_is_no_data(source):
    reading = await source.query('warroom_sim_cpu_ratio{pod="no-such-pod"}', CTX)
    assert reading.status == "nodata"
    assert "no series" in reading.detail


async def test_several_series_is_an_error_naming_the_query_and_an_aggregation(source):
    reading = await source.query("warroom_sim_cpu_ratio", CTX)
    assert reading.status == "error"
    assert "`warroom_sim_cpu_ratio` returned 3 series" in reading.detail
    assert "max by (pod)" in reading.detail and "sum(" in reading.detail


async def test_series_label_gives_pairs_and_the_largest_as_value(source):
    reading = await source.query("warroom_sim_cpu_ratio", CTX, series_label="pod")
    assert reading.status == "ok"
    assert [name for name, _ in reading.series] == ["web-0", "web-1", "web-2"]
    assert reading.value == max(v for _, v in reading.series)


@pytest.mark.parametrize(("query", "detail"), [("0/0", "NaN"), ("vector(1)/0", "+Inf"), ("-1/0", "-Inf")])
async def test_nan_and_inf_are_reported_never_as_numbers(source, query, detail):
    reading = await source.query(query, CTX)
    assert (reading.status, reading.value, reading.detail) == ("invalid", None, detail)


async def test_bad_promql_shows_prometheus_own_error_text(source):
    reading = await source.query("sum(rate(warroom_sim_http_requests_total[30s])", CTX)
    assert reading.status == "error"
    assert "Prometheus rejected the query (bad_data)" in reading.detail
    assert "parse error" in reading.detail and "unclosed left parenthesis" in reading.detail
    # A wrong query is not an outage: the next good query goes straight through.
    assert (await source.query("sum(warroom_sim_ws_connections)", CTX)).status == "ok"


async def test_range_vector_is_an_error_with_a_fix(source):
    reading = await source.query("warroom_sim_cpu_ratio[10s]", CTX)
    assert reading.status == "error" and "rate(…)" in reading.detail


async def test_backfill_returns_history_from_a_range_query(source):
    now = time.time()
    points = await source.backfill(PROMQL["cpu"], now - 20, now, 2)
    assert len(points) >= 3
    assert all(now - 30 <= t <= now + 1 for t, _ in points)
    assert all(v == pytest.approx(0.35, rel=0.1) for _, v in points)


def example_plan(tmp_path: Path, url: str) -> Path:
    """examples/staging-prometheus.yaml pointed at this test's servers."""
    text = (Path(__file__).parents[2] / "examples" / "staging-prometheus.yaml").read_text()
    assert "url: http://127.0.0.1:9090" in text
    plan = tmp_path / "staging-prometheus.yaml"
    plan.write_text(text.replace("url: http://127.0.0.1:9090", f"url: {url}"))
    return plan


async def test_the_engine_backfills_sparklines_from_range_queries_on_start(stack, tmp_path):
    _, server = stack
    plan = load_plan(example_plan(tmp_path, server.url))
    engine = build_engine(plan, state=tmp_path / "state.sqlite")
    try:
        await engine.start()
        await asyncio.wait_for(engine.backfill_task, 30)
        assert engine.tick_count == 0
        # The stack has scraped for 12 s or more: at the plan's 5 s step that is 2+ points.
        for pane in ("cpu", "memory"):
            history = list(engine.poller.history[pane])
            assert len(history) >= 2, pane
            assert all(v == pytest.approx(ServiceModel(noise=0).value(pane, 0, 0.25), rel=0.1) for v in history), pane
    finally:
        await engine.close()


def check(plan: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "warroom", "check", str(plan)], capture_output=True, text=True, timeout=60)


def test_check_probes_every_query_of_the_example_plan(stack, tmp_path):
    _, server = stack
    plan = example_plan(tmp_path, server.url)
    # Every pane (request_rate and session_rate have none), the error rate's request count, and both
    # sides of each comparison, of their request counts and of the exposure check (the exporter serves 25 %).
    cohort_queries = [COHORT_PROMQL[name].replace("{cohort}", cohort) for name in COHORT_PROMQL for cohort in ("new", "control")]
    probes = len(PROMQL) - 2 + 1 + len(cohort_queries)
    # A scrape the exporter answers late (a loaded machine: past the fixture's scrape timeout) marks every
    # series it served stale until the next good one: for that scrape interval the gauges (connections, CPU,
    # memory) have no data, and the check rightly says so (WARN, exit 0). Each check is what Prometheus
    # held as it ran: one asked in a second of a missed scrape is asked again a scrape later.
    runs: list[subprocess.CompletedProcess] = []

    def answered() -> subprocess.CompletedProcess | None:
        runs.append(check(plan))
        return runs[-1] if runs[-1].returncode != 0 or runs[-1].stdout.count("  ok   [service] ") == probes else None

    result = until("a check whose every query found data", answered, every=SCRAPE, show=lambda: runs[-1].stdout if runs else "")
    assert result.returncode == 0, result.stdout + result.stderr
    for query in cohort_queries:
        assert f"  ok   [service] {query}\n" in result.stdout, query
    assert "  error-rate-vs-control: new 0.080% vs" not in result.stdout  # values, not a verdict: each side as probed
    count = r"[\d.,]+k?"
    assert re.search(rf"  error-rate-vs-control: new 0\.0\d+%; control 0\.0\d+%; requests new {count}; requests control {count}\n",
                     result.stdout), result.stdout
    assert re.search(rf"  exposure check \(flag realtime-features\): units new {count}; control {count}; new share now 25\.0%\n",
                     result.stdout), result.stdout
    assert "check: all good" in result.stdout


def test_check_names_the_exact_problem(http_server, tmp_path):
    fake = http_server(lambda h: (200, "text/html", b"<html><title>Grafana</title></html>"))
    result = check(example_plan(tmp_path, fake.url))
    assert result.returncode == 7
    assert "FAIL [service] avg(warroom_sim_cpu_ratio)" in result.stdout
    assert "error: HTTP 200 but an HTML page (Grafana), not the Prometheus API" in result.stdout
    assert "Traceback" not in result.stderr
