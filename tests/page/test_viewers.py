"""Two hundred people on the status page while the engine runs cost the launch's sources and flag
service nothing: a real Prometheus (scraping the rehearsal exporter) and a real flag service on
loopback count the requests they answer themselves, and those counts do not move while the
viewers load the page and follow its live stream between two of the engine's polls."""

from __future__ import annotations

import time

from tests.flags.flagservice import FlagService
from tests.page.conftest import launch
from tests.support.servers import _stop, queries_answered, start_exporter, write_flags
from tests.support.viewers import look
from tests.support.waiting import until
from warroom.store import open_store

POLL = 20.0  # the engine's poll interval here: the viewers look in the quiet between two polls
VIEWERS = 200
TOKEN = "flag-token-page-viewers-5e1"
ERRORS = 'sum(rate(warroom_sim_http_requests_total{code=~"5.."}[5s])) / sum(rate(warroom_sim_http_requests_total[5s]))'


def test_two_hundred_viewers_cost_prometheus_and_the_flag_service_nothing(serve, tmp_path, prometheus_factory, monkeypatch):
    write_flags(tmp_path / "exporter-flags.json", 5, flag="feature")
    exporter = start_exporter(tmp_path / "exporter-flags.json", "--flag", "feature")
    service = FlagService(TOKEN).start()
    monkeypatch.setenv("WARROOM_TEST_FLAG_TOKEN", TOKEN)
    try:
        prometheus = prometheus_factory([exporter.target])
        prometheus.wait_for_data("warroom_sim_http_requests_total", minimum=6)

        def counts() -> tuple[float, int]:
            return queries_answered(prometheus.url), len(service.requests)

        unasked = counts()
        plan = launch(tmp_path / "launch", {
            "sources": {"prom": {"type": "prometheus", "url": prometheus.url, "timeout": "5s", "backfill": "0s"}},
            "flag_provider": {"provider": "http", "url": service.url, "token": "env:WARROOM_TEST_FLAG_TOKEN", "timeout": "2s"},
            "panes": [{"id": "errors", "title": "Error rate", "query": ERRORS, "unit": "ratio"}],
            "poll_interval": f"{POLL:g}s",
        })
        # The counters do count: the engine's own polls and flag writes move both (nothing else asks
        # them yet: verbs never poll a source nor write a flag, and the page is not up).
        until("the engine's requests counted by both servers",
              lambda: all(a > b for a, b in zip(counts(), unasked, strict=True)), timeout=3 * POLL)
        served = serve(plan=plan)
        until("Prometheus' number on the page", lambda: "1/3 Canary 5%" in served.get().text and "no data" not in served.get().text)
        store = open_store(served.folder / "state.sqlite", create=False, readonly=True)

        def tick() -> int:
            return store.snapshot().body["tick"]

        def between_two_polls():
            seen = tick()
            until("the engine's next poll", lambda: tick() > seen, timeout=3 * POLL)
            polled, started, before = tick(), time.monotonic(), counts()
            looked = look(served.url, VIEWERS)
            after = counts()
            # The engine polls again POLL after it last did: a window shorter than half of it, with no
            # new tick published at its end, holds none of the engine's own requests.
            if tick() != polled or time.monotonic() - started > POLL / 2:
                return None
            return before, after, looked

        before, after, looked = until("200 viewers between two of the engine's polls", between_two_polls, timeout=8 * POLL)
        assert looked.statuses == [200] * VIEWERS and looked.events == VIEWERS
        assert all("1/3 Canary 5%" in page and 'data-guardrail="errors"' in page for page in looked.pages)
        assert after == before, f"Prometheus queries and flag service requests before {before}, after {after}"
        store.close()
    finally:
        service.stop()
        _stop(exporter.proc)
