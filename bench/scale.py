"""Scale: 100 flags, 50 guardrails, 40 panes against the loopback exporter and a real
Prometheus. Figure: the engine's tick time against the slowest single query, both
measured in the same run (the baseline). Target: tick ≤ 1.2 × the slowest query.

A second baseline from the same run: the server's floor, i.e. the same distinct queries
fired all at once by curl (a C client, so the time is Prometheus' own). On a 2-core machine
Prometheus' CPU makes that floor several times the slowest single query; tick / floor is
what warroom's own client side (prometheus-api-client on requests, in threads) adds.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from common import ROOT, SMOKE, emit, summary

sys.path.insert(0, str(ROOT))
from tests.support.servers import PrometheusServer, _stop, start_exporter, write_flags  # noqa: E402
from warroom.core.clock import RealClock  # noqa: E402
from warroom.core.identity import Actor  # noqa: E402
from warroom.engine.build import build_engine  # noqa: E402
from warroom.plan.load import parse_plan  # noqa: E402
from warroom.sources.base import SourceContext  # noqa: E402

PANES, GUARDS, FLAGS = (4, 5, 10) if SMOKE else (40, 50, 100)
ROUNDS = 3 if SMOKE else 20


def queries(n: int) -> list[str]:
    """n distinct real PromQL queries over the exporter's metrics (different windows)."""
    shapes = [
        'sum(rate(warroom_sim_http_requests_total{{code=~"5.."}}[{w}s])) / sum(rate(warroom_sim_http_requests_total[{w}s]))',
        "histogram_quantile(0.95, sum by (le) (rate(warroom_sim_request_duration_seconds_bucket[{w}s])))",
        'sum(rate(warroom_sim_ws_connect_attempts_total{{result="success"}}[{w}s])) / sum(rate(warroom_sim_ws_connect_attempts_total[{w}s]))',
        "avg(avg_over_time(warroom_sim_cpu_ratio[{w}s]))",
    ]
    return [shapes[i % len(shapes)].format(w=10 + i) for i in range(n)]


def plan_text(prom_url: str, flags_path: Path) -> str:
    import yaml

    qs = queries(PANES + (GUARDS - PANES if GUARDS > PANES else 0))
    panes = [{"id": f"p{i}", "title": f"pane {i}", "query": q, "unit": "ratio"} for i, q in enumerate(qs[:PANES])]
    guards = [{"id": f"g{i}", "pane": f"p{i}", "above": 1e9, "for": "1m"} for i in range(min(PANES, GUARDS))]
    guards += [{"id": f"g{i}", "query": qs[i], "above": 1e9, "for": "1m"} for i in range(PANES, GUARDS)]
    flags = {f"flag-{i:03d}": 5 for i in range(FLAGS)}
    return yaml.safe_dump({
        "rollout": {"name": "bench-scale", "environment": "drill"},
        "sources": {"prom": {"type": "prometheus", "url": prom_url, "timeout": "5s", "backfill": "0s"}},
        "flag_provider": {"provider": "local", "path": str(flags_path)},
        "state": "state.sqlite",
        "poll_interval": "1s",
        "panes": panes,
        "guardrails": guards,
        "phases": [{"name": "canary", "flags": flags}],
    }, sort_keys=False)


async def measure(workdir: Path, prom_url: str) -> tuple[list[float], list[float], list[float]]:
    plan = parse_plan(plan_text(prom_url, workdir / "flags.json"), "bench-scale", workdir)
    engine = build_engine(plan, clock=RealClock(), backfill=False)
    await engine.start()
    await engine.tick()
    await engine.step_up(Actor("bench"), force=True, reason="bench")
    source = engine.sources["prom"]
    ctx = SourceContext(now=time.time(), started_at=time.time(), phase=1)
    ticks, slowest, floors = [], [], []
    curl_config = workdir / "floor.curl"
    curl_config.write_text("".join(f'url = "{prom_url}/api/v1/query?query={quote(q)}"\noutput = "/dev/null"\n' for _, q, _ in engine.poller.keys))
    for _ in range(ROUNDS):
        # Each transfer's own time (curl's start-up not counted); they all start at once, so
        # the longest is when the server has answered every query.
        done = subprocess.run(["curl", "--silent", "--fail", "--parallel", "--parallel-immediate", "--parallel-max", "100",
                               "--write-out", "%{time_total}\n", "--config", str(curl_config)],
                              check=True, capture_output=True, text=True)
        floors.append(max(float(t) for t in done.stdout.split()))
        # Baseline: every distinct query alone, one after another; the slowest of them.
        alone = []
        for _, query, _ in engine.poller.keys:
            t0 = time.perf_counter()
            reading = await source.query(query, ctx)
            alone.append(time.perf_counter() - t0)
            assert reading.status in ("ok", "nodata"), reading.detail
        slowest.append(max(alone))
        t0 = time.perf_counter()
        await engine.tick()
        ticks.append(time.perf_counter() - t0)
    await engine.close()
    return ticks, slowest, floors


def main() -> None:
    binary = shutil.which("prometheus")
    if not binary or not shutil.which("curl"):
        raise SystemExit("scale: prometheus and curl must be installed (.ci/install-servers installs them)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_flags(work / "exporter-flags.json", 25)
        exporter = start_exporter(work / "exporter-flags.json")
        prom = PrometheusServer(binary, work, [exporter.target])
        try:
            prom.start()
            prom.wait_for_data("warroom_sim_http_requests_total", minimum=3)
            ticks, slowest, floors = asyncio.run(measure(work, prom.url))
        finally:
            prom.stop()
            _stop(exporter.proc)
    t, s, f = summary(ticks), summary(slowest), summary(floors)
    ratio = t["median"] / s["median"]
    over_floor = t["median"] / f["median"]
    print(f"scale ({FLAGS} flags, {GUARDS} guardrails, {PANES} panes): tick median {t['median'] * 1000:.1f} ms "
          f"(max {t['max'] * 1000:.1f}), slowest single query median {s['median'] * 1000:.1f} ms → {ratio:.2f}×; "
          f"all queries at once from curl {f['median'] * 1000:.1f} ms → {over_floor:.2f}× that floor")
    emit("scale", {"unit": "ratio", "ratio": ratio, "ratio_vs_floor": over_floor, "tick": t, "slowest_query": s,
                   "floor": f, "target": 1.2, "met": ratio <= 1.2, "flags": FLAGS, "guardrails": GUARDS, "panes": PANES})


if __name__ == "__main__":
    main()
