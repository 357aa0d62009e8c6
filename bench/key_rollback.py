"""Key R → flags confirmed off: the console in a 120×36 pty, against the `http` flag
provider on a loopback flag service; R pressed once per fresh console; the time until
the engine's read-back confirms the flag off (journal `rollback.confirmed`).
Target: p99 ≤ 150 ms over 200 presses. Baseline in the same run: the flag service's
own round trip (write + read back) from a bare HTTP client.
WARROOM_BENCH_PRESSES sets the number of presses (a quick look: 20).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from common import ROOT, SMOKE, emit, summary
from pty_console import PANE_VALUE, warroom

sys.path.insert(0, str(ROOT))
from tests.flags.flagservice import FlagService  # noqa: E402

TOKEN = "bench-token-0123456789"
PRESSES = 2 if SMOKE else int(os.environ.get("WARROOM_BENCH_PRESSES", "200"))


def plan(workdir: Path, base: str) -> Path:
    data = {
        "rollout": {"name": "bench-key-r", "environment": "drill"},
        "sources": {"sim": {"type": "simulator", "seed": 5}},
        "flag_provider": {"provider": "http", "url": base, "token": "env:WARROOM_BENCH_FLAG_TOKEN"},
        "state": str(workdir / "state.sqlite"),
        "poll_interval": "1s",
        "panes": [{"id": "errors", "title": "Error rate", "query": "error_rate", "unit": "ratio"}],
        "phases": [{"name": "Canary 5%", "flags": {"feature": 5}}, {"name": "All", "flags": {"feature": 100}}],
    }
    path = workdir / "plan.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def confirmed_at(state: Path, timeout: float = 10.0) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with sqlite3.connect(state) as db:
            row = db.execute("SELECT ts FROM journal WHERE kind = 'rollback.confirmed'").fetchone()
        if row:
            return row[0]
        time.sleep(0.01)
    raise TimeoutError("no rollback.confirmed in the journal")


def main() -> None:
    os.environ["WARROOM_BENCH_FLAG_TOKEN"] = TOKEN
    service = FlagService(TOKEN).start()
    base = service.url
    latencies, baseline = [], []
    bare = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        for _ in range(PRESSES):
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                path = plan(work, base)
                subprocess.run([sys.executable, "-m", "warroom", "up", str(path)], check=True, capture_output=True)
                subprocess.run([sys.executable, "-m", "warroom", "step", str(path)], check=True, capture_output=True)
                console = warroom(str(path))
                try:
                    console.wait_for(PANE_VALUE, timeout=60)
                    console.wait_for(re.compile(rb"RUNNING"), timeout=30)
                    pressed = time.time()
                    console.send(b"R")
                    latencies.append(confirmed_at(work / "state.sqlite") - pressed)
                finally:
                    console.stop()
                    subprocess.run([sys.executable, "-m", "warroom", "down", str(path), "--force"], capture_output=True)
            t0 = time.perf_counter()
            bare.post("/flags/baseline", json={"enabled": False, "rollout_percentage": 0, "user_segments": []}).raise_for_status()
            bare.get("/flags/baseline").raise_for_status()
            baseline.append(time.perf_counter() - t0)
    finally:
        bare.close()
        service.stop()
    s, b = summary(latencies), summary(baseline)
    print(f"key R → flags confirmed off: p50 {s['median'] * 1000:.0f} ms, p99 {s['p99'] * 1000:.0f} ms over {s['n']} presses; "
          f"bare write+read-back p50 {b['median'] * 1000:.1f} ms")
    emit("key_rollback", {"unit": "s", **s, "baseline": b["median"], "target": 0.150, "met": s["p99"] <= 0.150})


if __name__ == "__main__":
    main()
