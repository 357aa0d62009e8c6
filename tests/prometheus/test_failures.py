"""A Prometheus source against real loopback servers that misbehave: errors in words,
timeouts honoured, secrets redacted, bounded backoff and recovery."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

from tests.support.helpers import free_port
from tests.support.loopback import serving
from tests.support.waiting import until_async
from warroom.engine.build import build_engine
from warroom.plan.load import parse_plan
from warroom.plan.sources import PrometheusSourceConfig
from warroom.sources.base import SourceContext
from warroom.sources.prometheus import BACKOFF, PrometheusSource

CTX = SourceContext(now=0.0, started_at=0.0, phase=1)
TOKEN = "s3cr3t-bearer-token-4711"
OK_BODY = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {}, "value": [1700000000, "0.25"]}]}}).encode()


def ok(_handler) -> tuple[int, str, bytes]:
    return 200, "application/json", OK_BODY


def source(url: str, **config) -> PrometheusSource:
    # A timeout no busy machine reaches, unless a test is about the timeout (it sets its own).
    cfg = PrometheusSourceConfig.model_validate({"type": "prometheus", "url": url, "timeout": 30, **config})
    return PrometheusSource("service", cfg, Path("."))


async def test_http_500_is_an_error_with_status_and_reason(http_server):
    fake = http_server(lambda h: (500, "text/plain", b"upstream exploded\n"))
    src = source(fake.url)
    reading = await src.query("up", CTX)
    assert reading.status == "error"
    assert reading.detail == "HTTP 500 Internal Server Error: not JSON: 'upstream exploded'"
    await src.close()


async def test_a_gateways_json_error_is_quoted_and_other_json_named_as_such(http_server):
    answers = {"/api/v1/query?query=gw": (503, b'{"message": "upstream   overloaded"}'), "/api/v1/query?query=other": (200, b'{"hits": []}')}
    fake = http_server(lambda h: (answers[h.path][0], "application/json", answers[h.path][1]))
    gateway, other = source(fake.url), source(fake.url)  # two sources: a 503 makes one back off
    assert (await gateway.query("gw", CTX)).detail == "HTTP 503 Service Unavailable: upstream overloaded"
    reading = await other.query("other", CTX)
    assert reading.detail == "HTTP 200 but the JSON is not a Prometheus API response (no data.result)"
    await gateway.close()
    await other.close()


async def test_an_html_page_is_named_as_such(http_server):
    page = b"<!DOCTYPE html><html><head><title>Sign in - Corp SSO</title></head><body>login</body></html>"
    fake = http_server(lambda h: (200, "text/html", page))
    src = source(fake.url)
    reading = await src.query("up", CTX)
    assert reading.status == "error"
    assert reading.detail.startswith("HTTP 200 but an HTML page (Sign in - Corp SSO), not the Prometheus API")
    await src.close()


async def test_a_proxy_error_page_keeps_its_status(http_server):
    fake = http_server(lambda h: (502, "text/html", b"<html><title>502 Bad Gateway</title></html>"))
    src = source(fake.url)
    reading = await src.query("up", CTX)
    assert reading.detail.startswith("HTTP 502 Bad Gateway: an HTML page (502 Bad Gateway)")
    await src.close()


async def test_a_slow_server_times_out_within_the_timeout_without_delaying_other_queries(http_server):
    answer_slow = threading.Event()  # the slow query is answered when the test says so: after both readings

    def respond(handler):
        if "slow" in handler.path:
            answer_slow.wait(30)
        return ok(handler)

    fake = http_server(respond)
    src = source(fake.url, timeout=1)
    answered: list[str] = []

    async def ask(query: str):
        reading = await src.query(query, CTX)
        answered.append(query)
        return reading

    try:
        slow, fast = await asyncio.gather(ask("slow_query"), ask("fast_query"))
    finally:
        answer_slow.set()
    # The server never answered the slow query: only the source's timeout can have ended it.
    assert slow.status == "error" and slow.detail.startswith("timeout after 1s:")
    assert fast.status == "ok" and fast.value == 0.25
    assert answered == ["fast_query", "slow_query"]  # the fast query did not wait for the slow one
    # A slow query backs off alone; the fast one keeps being asked.
    again = await src.query("slow_query", CTX)
    assert "retrying in" in again.detail
    assert (await src.query("fast_query", CTX)).status == "ok"
    await src.close()


async def test_in_the_engine_a_hanging_query_holds_back_neither_start_nor_the_other_panes(http_server, tmp_path):
    """The slow pane's server does not answer until the test says so: no timing involved."""
    release = threading.Event()
    now = time.time()
    history = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[now - 10, "0.1"], [now - 5, "0.2"]]}]}}).encode()

    def respond(handler):
        if "slow_metric" in handler.path:
            release.wait(30)
        return (200, "application/json", history) if "query_range" in handler.path else ok(handler)

    def asked(path_part: str, query: str) -> int:
        return sum(path_part in r["path"] and query in r["path"] for r in fake.requests)

    fake = http_server(respond)
    plan = parse_plan(f"""
rollout: {{name: slow-pane, environment: staging}}
sources:
  service: {{type: prometheus, url: "{fake.url}", timeout: 30s, backfill: 1m}}
flag_provider: {{provider: local, path: flags.json}}
poll_interval: 1s
panes:
  - {{id: fast, title: Fast, query: fast_metric}}
  - {{id: slow, title: Slow, query: slow_metric}}
phases:
  - {{name: Beta 5%, flags: {{f: 5}}, hold: 1h}}
""", str(tmp_path / "plan.yaml"), tmp_path)
    engine = build_engine(plan, state=tmp_path / "state.sqlite")
    try:
        # The slow pane's backfill range query hangs; start and the first tick do not wait for it.
        await asyncio.wait_for(engine.start(), 10)
        snap = await asyncio.wait_for(engine.tick(), 10)
        fast, slow = snap.panes
        assert (fast.status, fast.value) == ("ok", 0.25)
        assert (slow.status, slow.detail) == ("nodata", "waiting for the first sample")
        assert asked("query_range", "fast_metric") == 1 and asked("query_range", "slow_metric") == 1
        snap = await asyncio.wait_for(engine.tick(), 10)
        assert snap.panes[0].status == "ok" and asked("/query?", "fast_metric") == 2
        assert asked("/query?", "slow_metric") == 1  # still in flight: not asked a second time

        release.set()
        await asyncio.wait_for(engine.backfill_task, 10)
        # Backfilled history comes before the live samples the ticks added meanwhile.
        assert list(engine.poller.history["fast"]) == [0.1, 0.2, 0.25, 0.25]

        async def slow_pane(status: str):
            snap = await asyncio.wait_for(engine.tick(), 10)
            return snap if snap.panes[1].status == status else None

        snap = await until_async("the slow pane's answer", lambda: slow_pane("ok"), every=0.1)
        assert snap.panes[1].value == 0.25

        # Hanging again: once a whole poll interval has passed, the old number is shown as stale.
        release.clear()
        snap = await until_async("the slow pane to go stale", lambda: slow_pane("stale"), every=plan.poll_interval)
        fast, slow = snap.panes
        assert fast.status == "ok"
        assert (slow.status, slow.value) == ("stale", 0.25)
        assert slow.detail.startswith("waiting for a slow answer (asked ")
    finally:
        release.set()
        await engine.close()


async def test_connection_refused_names_host_and_reason():
    port = free_port()
    src = source(f"http://127.0.0.1:{port}")
    reading = await src.query("up", CTX)
    assert reading.detail == f"cannot connect to 127.0.0.1:{port}: connection refused"
    await src.close()


async def test_bearer_token_is_sent_and_never_shown(http_server, monkeypatch):
    monkeypatch.setenv("WARROOM_TEST_PROM_TOKEN", TOKEN)

    def respond(handler):
        if handler.headers.get("Authorization") == f"Bearer {TOKEN}" and "echo" not in handler.path:
            return ok(handler)
        # A careless proxy that echoes the credentials it got into its error page.
        return 401, "text/plain", f"bad credentials: {handler.headers.get('Authorization')}".encode()

    fake = http_server(respond)
    src = source(fake.url, auth={"bearer": "env:WARROOM_TEST_PROM_TOKEN"}, headers={"X-Scope-OrgID": "launch"})
    good = await src.query("up", CTX)
    assert good.status == "ok"
    assert fake.requests[0]["x-scope-orgid"] == "launch"
    bad = await src.query("echo", CTX)
    assert bad.detail.startswith("HTTP 401 Unauthorized: check the source's auth")
    for text in (good.detail, bad.detail, src.describe(), repr(good), repr(bad)):
        assert TOKEN not in text
    assert "bearer token" in src.describe()
    await src.close()


async def test_a_token_echoed_in_an_error_body_is_redacted(http_server, monkeypatch):
    monkeypatch.setenv("WARROOM_TEST_PROM_TOKEN", TOKEN)
    fake = http_server(lambda h: (500, "text/plain", f"failed for {h.headers.get('Authorization')}".encode()))
    src = source(fake.url, auth={"bearer": "env:WARROOM_TEST_PROM_TOKEN"})
    reading = await src.query("up", CTX)
    assert reading.status == "error" and "failed for Bearer ***" in reading.detail
    assert TOKEN not in reading.detail
    await src.close()


async def test_basic_auth_from_a_secret_reference(http_server, monkeypatch):
    import base64

    monkeypatch.setenv("WARROOM_TEST_PROM_PW", "basic-pass-0815")
    expected = "Basic " + base64.b64encode(b"launch:basic-pass-0815").decode()
    fake = http_server(lambda h: ok(h) if h.headers.get("Authorization") == expected else (401, "text/plain", b"no"))
    src = source(fake.url, auth={"basic": {"username": "launch", "password": "env:WARROOM_TEST_PROM_PW"}})
    assert (await src.query("up", CTX)).status == "ok"
    await src.close()


async def test_a_missing_secret_is_a_clear_problem_and_nothing_is_sent(http_server, monkeypatch):
    monkeypatch.delenv("WARROOM_TEST_MISSING", raising=False)
    fake = http_server(ok)
    src = source(fake.url, auth={"bearer": "env:WARROOM_TEST_MISSING"})
    assert "WARROOM_TEST_MISSING is not set" in (src.static_problem("up") or "")
    reading = await src.query("up", CTX)
    assert reading.status == "error" and "WARROOM_TEST_MISSING is not set" in reading.detail
    assert fake.requests == []
    await src.close()


async def test_tls_is_verified_by_default_with_a_ca_bundle_or_explicitly_insecure(http_server, self_signed):
    cert, _ = self_signed
    fake = http_server(ok, tls=self_signed)
    default = source(fake.url)
    refused = await default.query("up", CTX)
    assert refused.status == "error"
    assert refused.detail.startswith(f"cannot connect to 127.0.0.1:{fake.url.rsplit(':', 1)[1]}: TLS certificate verify failed: self")
    assert "tls.ca_bundle" in refused.detail and default.insecure is False
    bundled = source(fake.url, tls={"ca_bundle": str(cert)})
    assert (await bundled.query("up", CTX)).status == "ok"
    insecure = source(fake.url, tls={"insecure_skip_verify": True})
    assert (await insecure.query("up", CTX)).status == "ok"
    assert insecure.insecure is True and "TLS verification OFF" in insecure.describe()
    missing = source(fake.url, tls={"ca_bundle": "/no/such/ca.pem"})
    assert missing.static_problem("up") == "tls.ca_bundle /no/such/ca.pem: no such file"
    for src in (default, bundled, insecure, missing):
        await src.close()


async def test_backoff_spares_the_server_and_recovers_by_itself(http_server):
    failing = {"on": True}
    fake = http_server(lambda h: (503, "text/plain", b"overloaded") if failing["on"] else ok(h))
    src = source(fake.url)
    first = await src.query("up", CTX)
    assert first.detail == "HTTP 503 Service Unavailable: not JSON: 'overloaded'"
    # While backing off, a whole tick of queries is answered without asking the server.
    during = await asyncio.gather(*(src.query(f"q{i}", CTX) for i in range(10)))
    assert all(r.status == "error" and r.detail.endswith("retrying in 1s") for r in during)
    assert len(fake.requests) == 1
    # After the backoff exactly one probe goes out; the others wait for its verdict.
    await until_async("the source's backoff to run out", lambda: time.monotonic() >= src.server.retry_at)
    probing = time.monotonic()
    probe_round = await asyncio.gather(*(src.query(f"q{i}", CTX) for i in range(10)))
    probed = time.monotonic()
    assert len(fake.requests) == 2
    assert all(r.status == "error" for r in probe_round)
    assert src.server.failures == 2 and "retrying in" in probe_round[-1].detail
    # The backoff doubled: the next try is due 2 s after the probe failed, which was within that round.
    assert probing + BACKOFF.delay(2) <= src.server.retry_at <= probed + BACKOFF.delay(2) and BACKOFF.delay(2) == 2.0
    # The server comes back: the next probe succeeds and every query goes through again.
    failing["on"] = False
    await until_async("the source's backoff to run out", lambda: time.monotonic() >= src.server.retry_at)
    recovered = await asyncio.gather(*(src.query(f"q{i}", CTX) for i in range(10)))
    assert all(r.status == "ok" for r in recovered), [r.detail for r in recovered]
    assert len(fake.requests) == 12
    await src.close()


async def test_a_proxy_from_the_environment_is_used(http_server, monkeypatch):
    # A bastion may reach Prometheus only through a proxy named in the environment; the
    # source reads the environment once at start (not per query), and must still use it.
    proxy = http_server(ok)
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    src = source("http://prometheus.invalid:9090")
    reading = await src.query("up", CTX)
    assert reading.status == "ok" and reading.value == 0.25
    assert proxy.requests[0]["path"].startswith("http://prometheus.invalid:9090/api/v1/query?query=up")
    await src.close()


async def test_a_redirect_to_another_host_carries_no_credential(monkeypatch):
    monkeypatch.setenv("WARROOM_TEST_PROM_TOKEN", TOKEN)
    monkeypatch.setenv("WARROOM_TEST_API_KEY", "SECRET-APIKEY-0815")
    monkeypatch.setenv("WARROOM_TEST_COOKIE", "session=SECRET-COOKIE-0815")
    answer = lambda request: (200, {"Content-Type": "application/json"}, OK_BODY)  # noqa: E731
    with serving(answer) as elsewhere:

        def respond(request):  # moved: /api → /prom/api on this host; then to another host
            if request.path.startswith("/prom/"):
                return 301, {"Location": elsewhere.other_origin_url + request.path}, b""
            return 301, {"Location": "/prom" + request.path}, b""

        with serving(respond) as origin:
            src = source(origin.url, auth={"bearer": "env:WARROOM_TEST_PROM_TOKEN"},
                         headers={"X-Api-Key": "env:WARROOM_TEST_API_KEY", "Cookie": "env:WARROOM_TEST_COOKIE",
                                  "X-Scope-OrgID": "launch"})
            reading = await src.query("up", CTX)
            await src.close()
    assert reading.status == "ok" and reading.value == 0.25
    # The same host got every credential, on both requests (a move within the server keeps them) …
    assert [r.path.split("?")[0] for r in origin.requests] == ["/api/v1/query", "/prom/api/v1/query"]
    for request in origin.requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["x-api-key"] == "SECRET-APIKEY-0815" and request.headers["cookie"] == "session=SECRET-COOKIE-0815"
    # … the other host none of them; a header that is not a credential still goes.
    (arrived,) = elsewhere.requests
    assert arrived.headers["host"].startswith("localhost:")
    assert not {"authorization", "x-api-key", "cookie"} & set(arrived.headers)
    assert arrived.headers["x-scope-orgid"] == "launch"


async def test_a_huge_error_answer_is_kept_short_and_says_how_much_was_cut(http_server):
    error = "query processing would load too many samples into memory: " + "series{pod=\"p\"} " * 300_000
    body = json.dumps({"status": "error", "errorType": "execution", "error": error}).encode()
    assert len(body) > 5_000_000
    fake = http_server(lambda h: (422, "application/json", body))
    src = source(fake.url)
    reading = await src.query("up", CTX)
    assert reading.detail.startswith("Prometheus rejected the query (execution): query processing would load too many")
    assert len(reading.detail) < 400
    assert reading.detail.endswith(f" ({len(error) - 300} bytes cut)")
    await src.close()
