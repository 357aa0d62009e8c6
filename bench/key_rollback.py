"""Key R → flags confirmed off: the console in a 120×36 pty, against the `http` flag
provider on a loopback flag service; R pressed once per fresh console; the time until
the engine's read-back confirms the flag off (journal `rollback.confirmed`).
Target: p99 ≤ 150 ms over 200 presses. Baseline in the same run: the flag service's
own round trip (write + read back) from a bare HTTP client.

The same presses on a store in PostgreSQL (loopback, Debian's cluster; the command reaches
the engine by NOTIFY), interleaved with the SQLite ones, against the SQLite figure of the
same run. Without a cluster (not root, not installed) that figure is left out — or, under
CI, the script fails.
WARROOM_BENCH_PRESSES sets the number of presses per store (a quick look: 20).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml
from common import ROOT, SMOKE, emit, summary
from pty_console import PANE_VALUE, warroom

sys.path.insert(0, str(ROOT))
from tests.flags.flagservice import FlagService  # noqa: E402
from tests.support.servers import STORE_PASSWORD, PostgresMissing, postgres_database, start_postgres  # noqa: E402
from warroom.plan.state import PostgresState  # noqa: E402
from warroom.store import open_store  # noqa: E402

TOKEN = "bench-token-0123456789"
PRESSES = 1 if SMOKE else int(os.environ.get("WARROOM_BENCH_PRESSES", "200"))


PG_PASSWORD = "WARROOM_BENCH_PG_PASSWORD"


def plan(workdir: Path, base: str, state: Any) -> Path:
    data = {
        "rollout": {"name": "bench-key-r", "environment": "drill"},
        "sources": {"sim": {"type": "simulator", "seed": 5}},
        "flag_provider": {"provider": "http", "url": base, "token": "env:WARROOM_BENCH_FLAG_TOKEN"},
        "state": state,
        "poll_interval": "1s",
        "panes": [{"id": "errors", "title": "Error rate", "query": "error_rate", "unit": "ratio"}],
        "phases": [{"name": "Canary 5%", "flags": {"feature": 5}}, {"name": "All", "flags": {"feature": 100}}],
    }
    path = workdir / "plan.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def confirmed_at(ref: Path | PostgresState, timeout: float = 10.0) -> float:
    deadline = time.time() + timeout
    store = open_store(ref, create=False)
    try:
        while time.time() < deadline:
            found = [e.ts for e in store.iter_entries(kinds=("rollback.confirmed",))]
            if found:
                return found[0]
            time.sleep(0.01)
    finally:
        store.close()
    raise TimeoutError("no rollback.confirmed in the journal")


def press(base: str, state: str | dict, ref: Path | PostgresState, work: Path) -> float:
    """One fresh rollout: its engine up, stepped to phase 1, a console; R; seconds until confirmed off."""
    path = plan(work, base, state)
    subprocess.run([sys.executable, "-m", "warroom", "up", str(path)], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "warroom", "step", str(path)], check=True, capture_output=True)
    console = warroom(str(path))
    try:
        console.wait_for(PANE_VALUE, timeout=60)
        console.wait_for(re.compile(rb"RUNNING"), timeout=30)
        pressed = time.time()
        console.send(b"R")
        return confirmed_at(ref) - pressed
    finally:
        console.stop()
        subprocess.run([sys.executable, "-m", "warroom", "down", str(path), "--force"], capture_output=True)


@contextlib.contextmanager
def database() -> Iterator[str | None]:
    """A database of this run on the local cluster; None when there is none (CI: an error)."""
    try:
        port = start_postgres()
    except PostgresMissing as exc:
        if os.environ.get("CI"):
            raise
        print(f"no PostgreSQL figure: {exc}")
        yield None
        return
    os.environ[PG_PASSWORD] = STORE_PASSWORD
    with postgres_database(port, f"warroom_bench_{os.getpid()}") as url:
        yield url


def main() -> None:
    os.environ["WARROOM_BENCH_FLAG_TOKEN"] = TOKEN
    service = FlagService(TOKEN).start()
    base = service.url
    latencies: dict[str, list[float]] = {"sqlite": [], "postgres": []}
    baseline = []
    bare = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with database() as url, tempfile.TemporaryDirectory() as logs:
            os.environ["XDG_STATE_HOME"] = logs  # where a PostgreSQL engine logs
            for _ in range(PRESSES):  # interleaved: both stores see the same machine's moods
                with tempfile.TemporaryDirectory() as tmp:
                    work = Path(tmp)
                    latencies["sqlite"].append(press(base, str(work / "state.sqlite"), work / "state.sqlite", work))
                if url is not None:
                    key = f"bench-key-r-{uuid.uuid4().hex[:8]}"
                    ref = PostgresState(url=url, password=f"env:{PG_PASSWORD}", rollout=key)
                    with tempfile.TemporaryDirectory() as tmp:
                        state = {"url": url, "password": f"env:{PG_PASSWORD}", "rollout": key}
                        latencies["postgres"].append(press(base, state, ref, Path(tmp)))
                t0 = time.perf_counter()
                bare.post("/flags/baseline", json={"enabled": False, "rollout_percentage": 0, "user_segments": []}).raise_for_status()
                bare.get("/flags/baseline").raise_for_status()
                baseline.append(time.perf_counter() - t0)
    finally:
        bare.close()
        service.stop()
    s, b = summary(latencies["sqlite"]), summary(baseline)
    print(f"key R → flags confirmed off: p50 {s['median'] * 1000:.0f} ms, p99 {s['p99'] * 1000:.0f} ms over {s['n']} presses; "
          f"bare write+read-back p50 {b['median'] * 1000:.1f} ms")
    emit("key_rollback", {"unit": "s", **s, "baseline": b["median"], "target": 0.150, "met": s["p99"] <= 0.150})
    if latencies["postgres"]:
        p = summary(latencies["postgres"])
        print(f"… on PostgreSQL: p50 {p['median'] * 1000:.0f} ms, p99 {p['p99'] * 1000:.0f} ms over {p['n']} presses")
        emit("key_rollback_postgres", {"unit": "s", **p, "baseline": s["p99"], "target": 0.150, "met": p["p99"] <= 0.150})


if __name__ == "__main__":
    main()
