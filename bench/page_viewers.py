"""Two hundred people on the status page while the engine runs: the page stays quick, and the
launch's sources and flag service see one engine's load, not the viewers'.

A real Prometheus scraping the rehearsal exporter and the loopback flag service (the seeds'
API, tests/flags/flagservice.py) behind a plan at a 1 s poll; `warroom up`, then `warroom page`.
Waves of viewers for WINDOW seconds: each loads the page LOADS times and follows its live
stream to the first event (tests/support/viewers.py, what the tests check). Figures: page-load p99 with 200 viewers at
once against one viewer alone (same run); and Prometheus' query rate and the flag service's
request rate (their own counters) while the viewers look, against the rates with none.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import ROOT, SMOKE, emit, summary

sys.path.insert(0, str(ROOT))
from tests.flags.flagservice import FlagService  # noqa: E402
from tests.support.helpers import free_port  # noqa: E402
from tests.support.servers import PrometheusServer, _stop, http_get, queries_answered, start_exporter, write_flags  # noqa: E402
from tests.support.viewers import Looked, look  # noqa: E402
from tests.support.waiting import until  # noqa: E402

VIEWERS = 20 if SMOKE else 200
LOADS = 2 if SMOKE else 5  # page loads per viewer
ALONE = 20 if SMOKE else 200  # page loads by one viewer alone: the baseline
WINDOW = 1.0 if SMOKE else 20.0  # seconds of source load with no viewer
TOKEN = "bench-page-viewers-token"
WARROOM = [sys.executable, "-m", "warroom"]
ERRORS = 'sum(rate(warroom_sim_http_requests_total{code=~"5.."}[30s])) / sum(rate(warroom_sim_http_requests_total[30s]))'
P95 = "histogram_quantile(0.95, sum by (le) (rate(warroom_sim_request_duration_seconds_bucket[30s])))"


def plan(work: Path, prom: str, flags: str) -> Path:
    data = {
        "rollout": {"name": "bench-page", "environment": "drill"},
        "sources": {"prom": {"type": "prometheus", "url": prom, "timeout": "5s", "backfill": "0s"}},
        "flag_provider": {"provider": "http", "url": flags, "token": "env:WARROOM_BENCH_FLAG_TOKEN", "timeout": "2s"},
        "state": str(work / "state.sqlite"),
        "poll_interval": "1s",
        "panes": [{"id": "errors", "title": "Error rate", "query": ERRORS, "unit": "ratio"},
                  {"id": "p95", "title": "Latency p95", "query": P95, "unit": "seconds"}],
        "guardrails": [{"id": "errors", "pane": "errors", "above": 0.5, "for": "1m", "action": "rollback"},
                       {"id": "p95", "pane": "p95", "above": 5, "for": "1m", "action": "pause"}],
        "phases": [{"name": "Canary 5%", "flags": {"feature": 5}}],
        "updates": {"owner": "Dana Reyes (product)", "every": "15m", "after_incident": "5m"},
    }
    path = work / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def rates(prom: str, service: FlagService, seconds: float | None = None, during=None) -> tuple[float, float]:
    """(Prometheus queries/s, flag service requests/s) over `seconds`, or while `during()` runs."""
    first, requests, t0 = queries_answered(prom), len(service.requests), time.perf_counter()
    if during is None:
        time.sleep(seconds or 0)
    else:
        during()
    elapsed = time.perf_counter() - t0
    return (queries_answered(prom) - first) / elapsed, (len(service.requests) - requests) / elapsed


def main() -> None:
    binary = shutil.which("prometheus")
    if not binary:
        raise SystemExit("page_viewers: prometheus must be installed (.ci/install-servers installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_flags(work / "exporter-flags.json", 5, flag="feature")
        exporter = start_exporter(work / "exporter-flags.json", "--flag", "feature")
        service = FlagService(TOKEN).start()
        prom = PrometheusServer(binary, work, [exporter.target])
        env = {**os.environ, "WARROOM_BENCH_FLAG_TOKEN": TOKEN}
        page = path = None
        try:
            prom.start()
            prom.wait_for_data("warroom_sim_http_requests_total", minimum=3)
            path = plan(work, prom.url, service.url)
            for verb in ("up", "step"):
                subprocess.run([*WARROOM, verb, str(path)], check=True, capture_output=True, env=env)
            port = free_port()
            page = subprocess.Popen([*WARROOM, "page", str(path), "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, env=env)
            url = f"http://127.0.0.1:{port}"
            until("the page in phase 1", lambda: b"1/1 Canary 5%" in http_get(url + "/")[1], retry_on=(OSError,))
            alone = look(url, 1, loads=ALONE, follow=False).seconds
            quiet = rates(prom.url, service, WINDOW)
            looked: list[Looked] = []

            def viewers_for_a_window() -> None:  # waves of viewers arriving, for as long as the quiet window
                started = time.perf_counter()
                while time.perf_counter() - started < WINDOW:
                    looked.append(look(url, VIEWERS, loads=LOADS))

            busy = rates(prom.url, service, during=viewers_for_a_window)
        finally:
            if page is not None:
                page.terminate()
                page.wait(10)
            if path is not None:
                subprocess.run([*WARROOM, "down", str(path), "--force"], capture_output=True, env=env)
            prom.stop()
            service.stop()
            _stop(exporter.proc)
    loads, base = summary([s for wave in looked for s in wave.seconds]), summary(alone)
    ok = all(status == 200 for wave in looked for status in wave.statuses) and all(wave.events == VIEWERS for wave in looked)
    print(f"{len(looked)} waves of {VIEWERS} viewers × {LOADS} loads: page p50 {loads['median'] * 1000:.0f} ms, p99 {loads['p99'] * 1000:.0f} ms "
          f"(one viewer alone: p99 {base['p99'] * 1000:.1f} ms); every load 200 and every stream live: {ok}")
    print(f"sources: Prometheus {busy[0]:.2f} queries/s with viewers, {quiet[0]:.2f}/s without; "
          f"flag service {busy[1]:.2f} requests/s with, {quiet[1]:.2f}/s without")
    emit("page_viewers", {"unit": "s", **loads, "baseline": base["p99"], "viewers": VIEWERS, "loads": LOADS, "waves": len(looked), "all_ok": ok,
                          "target": 0.5, "met": ok and loads["p99"] <= 0.5})
    ratios = [b / q if q else float("inf") for b, q in zip(busy, quiet, strict=True)]
    emit("page_source_load", {"unit": "ratio", "prometheus": ratios[0], "flags": ratios[1], "with": list(busy), "baseline": list(quiet),
                              "viewers": VIEWERS, "window_s": WINDOW, "target": 1.0, "met": all(abs(r - 1.0) <= 0.1 for r in ratios)})


if __name__ == "__main__":
    main()
