"""Twelve consoles attached to one engine: the sources see one engine's query rate, and an
idle console costs little.

A real Prometheus scraping the rehearsal exporter; `warroom up` on a plan of 4 panes at a
1 s poll. Prometheus counts the queries it answers itself
(`prometheus_http_requests_total{handler="/api/v1/query"}` on its /metrics page): the rate with no console
open, then with twelve consoles in 120×36 ptys. Figures: that rate with twelve consoles
against the rate with none (the baseline, same run; target: the same, 1.0×), and each
console's idle CPU over the window against a Textual hello-world beside them (target:
≤ 1.5 % of a core per console).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import ROOT, SMOKE, emit, summary
from pty_console import PANE_VALUE, hello_world, warroom

sys.path.insert(0, str(ROOT))
from tests.support.servers import PrometheusServer, _stop, queries_answered, start_exporter, write_flags  # noqa: E402

CONSOLES = 2 if SMOKE else 12
WINDOW = 2.0 if SMOKE else 30.0
SETTLE = 0.5 if SMOKE else 3.0  # seconds before each window: the engine's first ticks; the consoles' start-up work
QUERIES = [
    'sum(rate(warroom_sim_http_requests_total{code=~"5.."}[30s])) / sum(rate(warroom_sim_http_requests_total[30s]))',
    "histogram_quantile(0.95, sum by (le) (rate(warroom_sim_request_duration_seconds_bucket[30s])))",
    "avg(warroom_sim_cpu_ratio)",
    "avg(warroom_sim_memory_ratio)",
]


def rate(prom: str, seconds: float) -> float:
    """Queries a second over `seconds`."""
    first, t0 = queries_answered(prom), time.perf_counter()
    time.sleep(seconds)
    return (queries_answered(prom) - first) / (time.perf_counter() - t0)


def plan(work: Path, prom: str) -> Path:
    data = {
        "rollout": {"name": "bench-consoles", "environment": "drill"},
        "sources": {"prom": {"type": "prometheus", "url": prom, "timeout": "5s", "backfill": "0s"}},
        "flag_provider": {"provider": "local", "path": str(work / "flags.json")},
        "state": str(work / "state.sqlite"),
        "poll_interval": "1s",
        "panes": [{"id": f"p{i}", "title": f"Pane {i}", "query": q, "unit": "ratio"} for i, q in enumerate(QUERIES)],
        "phases": [{"name": "Canary 5%", "flags": {"feature": 5}}],
    }
    path = work / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def cpu_over(programs, seconds: float) -> list[float]:
    before = [p.cpu_seconds() for p in programs]
    t0 = time.perf_counter()
    time.sleep(seconds)
    elapsed = time.perf_counter() - t0
    return [100 * (p.cpu_seconds() - b) / elapsed for p, b in zip(programs, before, strict=True)]


def main() -> None:
    binary = shutil.which("prometheus")
    if not binary:
        raise SystemExit("many_consoles: prometheus must be installed (.ci/install-servers installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_flags(work / "exporter-flags.json", 25)
        exporter = start_exporter(work / "exporter-flags.json")
        prom = PrometheusServer(binary, work, [exporter.target])
        consoles = []
        path = None
        try:
            prom.start()
            prom.wait_for_data("warroom_sim_http_requests_total", minimum=3)
            path = plan(work, prom.url)
            subprocess.run([sys.executable, "-m", "warroom", "up", str(path)], check=True, capture_output=True)
            time.sleep(SETTLE)  # the engine's first ticks
            alone = rate(prom.url, WINDOW)
            consoles = [warroom(str(path)) for _ in range(CONSOLES)]
            hello = hello_world()
            for console in consoles:
                console.wait_for(PANE_VALUE, timeout=120)
            hello.wait_for(PANE_VALUE, timeout=60)
            time.sleep(SETTLE)  # start-up work is not idle work
            first, t0 = queries_answered(prom.url), time.perf_counter()
            cpu = cpu_over([*consoles, hello], WINDOW)
            with_consoles = (queries_answered(prom.url) - first) / (time.perf_counter() - t0)
            hello.stop()
        finally:
            for console in consoles:
                console.stop()
            if path is not None:
                subprocess.run([sys.executable, "-m", "warroom", "down", str(path), "--force"], capture_output=True)
            prom.stop()
            _stop(exporter.proc)
    per_console, hello_cpu = cpu[:-1], cpu[-1]
    c = summary(per_console)
    ratio = with_consoles / alone if alone else float("inf")
    print(f"{CONSOLES} consoles on one engine: Prometheus answered {with_consoles:.2f} queries/s with them, {alone:.2f}/s with none "
          f"({ratio:.2f}×); idle console CPU median {c['median']:.2f} % (max {c['max']:.2f} %), hello-world {hello_cpu:.2f} %")
    emit("consoles_query_rate", {"unit": "ratio", "ratio": ratio, "with": with_consoles, "baseline": alone, "consoles": CONSOLES,
                                 "target": 1.0, "met": abs(ratio - 1.0) <= 0.1})
    emit("consoles_idle_cpu", {"unit": "%", **c, "baseline": hello_cpu, "consoles": CONSOLES, "target": 1.5, "met": c["max"] <= 1.5,
                               "window_s": WINDOW})


if __name__ == "__main__":
    main()
