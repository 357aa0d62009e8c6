"""Breach → flags confirmed off: from the moment a guardrail's `for` window is met to the
read-back that confirms the flags off. Real clock, simulator, local flag store.

Target: ≤ one poll interval + 0.25 s. The baseline in the same run is the poll interval.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from common import SMOKE, emit, summary

from warroom.core.clock import RealClock
from warroom.core.identity import Actor
from warroom.engine.build import build_engine
from warroom.plan.load import parse_plan

POLL = 1.0
PLAN = """
rollout: {name: bench-breach, environment: drill}
sources: {sim: {type: simulator, seed: 3, flag: feature, noise: 0,
                faults: [{metric: error_rate, phase: 1, after: 1s, value: 0.05, while_exposed: false}]}}
flag_provider: {provider: local, path: flags.json}
state: state.sqlite
poll_interval: 1s
panes: [{id: errors, title: Errors, query: error_rate, unit: ratio}]
# 1.5 s is not a multiple of the poll, so detection waits for the next tick, as in life.
guardrails: [{id: errors, pane: errors, above: 0.01, for: 1500ms, action: rollback}]
phases: [{name: canary, flags: {feature: 5}}]
"""


async def one_run(workdir: Path) -> float:
    plan = parse_plan(PLAN, "bench", workdir)
    engine = build_engine(plan, clock=RealClock(), backfill=False)
    await engine.start()
    await engine.tick()
    await engine.step_up(Actor("bench"))
    stop = asyncio.Event()
    runner = asyncio.ensure_future(engine.run(stop))
    try:
        while True:
            await asyncio.sleep(0.02)
            entries = {e.kind: e for e in engine.store.entries()}
            if "rollback.confirmed" in entries:
                break
    finally:
        stop.set()
        await runner
        await engine.close()
    intent = entries["rollback.intent"]
    window_met = intent.data["cause"]["since"] + intent.data["cause"]["for"]
    return entries["rollback.confirmed"].ts - window_met


def main() -> None:
    runs = 2 if SMOKE else 10
    latencies = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            latencies.append(asyncio.run(one_run(Path(tmp))))
    s = summary(latencies)
    print(f"breach → flags off: median {s['median'] * 1000:.0f} ms, max {s['max'] * 1000:.0f} ms over {s['n']} runs (poll {POLL:g} s)")
    emit("breach_to_off", {"unit": "s", **s, "baseline": POLL, "target": POLL + 0.25,
                           "met": s["max"] <= POLL + 0.25})


if __name__ == "__main__":
    main()
