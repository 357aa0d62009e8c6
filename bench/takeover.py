"""Driver killed → standby driving, on a PostgreSQL store: two `warroom engine` processes with
other host identities on one database (loopback, Debian's cluster), the driver SIGKILLed; the
time from the kill to the lease naming the standby. Target: ≤ lease TTL + one standby poll
(1 s), every run; median and spread over repeated runs (WARROOM_BENCH_RUNS, default 10).
Without a cluster the script says so and prints no figure (under CI it fails).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from common import ROOT, SMOKE, emit, summary
from key_rollback import PG_PASSWORD, database

sys.path.insert(0, str(ROOT))
from warroom.engine.lease import HEARTBEAT  # noqa: E402
from warroom.plan.state import PostgresState  # noqa: E402
from warroom.store import open_store  # noqa: E402
from warroom.store.base import Store, StoreMissing  # noqa: E402

RUNS = 1 if SMOKE else int(os.environ.get("WARROOM_BENCH_RUNS", "10"))
TTL = 3.0


def driver(store: Store) -> int | None:
    try:
        lease = store.lease()
    except StoreMissing:
        return None
    return lease.holder.pid if lease is not None and lease.holder is not None else None


def until(check, timeout: float = 30.0, every: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise TimeoutError("never happened")


def one_run(url: str, work: Path) -> float:
    key = f"bench-takeover-{uuid.uuid4().hex[:8]}"
    path = work / "plan.yaml"
    path.write_text(yaml.safe_dump({
        "rollout": {"name": key, "environment": "drill"},
        "sources": {"sim": {"type": "simulator", "seed": 5}},
        "flag_provider": {"provider": "local", "path": str(work / "flags.json")},
        "state": {"url": url, "password": f"env:{PG_PASSWORD}", "rollout": key},
        "poll_interval": "1s",
        "panes": [{"id": "errors", "title": "Error rate", "query": "error_rate", "unit": "ratio"}],
        "phases": [{"name": "Canary 5%", "flags": {"feature": 5}}, {"name": "All", "flags": {"feature": 100}}],
    }))

    def engine(host: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "warroom", "engine", str(path), "--lease-ttl", f"{TTL:g}s"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                env={**os.environ, "WARROOM_HOSTNAME": host})

    eu = engine("bastion-eu")
    us = None
    store = None
    try:
        store = opened(PostgresState(url=url, password=f"env:{PG_PASSWORD}", rollout=key))
        until(lambda: driver(store) == eu.pid)
        us = engine("bastion-us")
        until(lambda: any(s.holder.pid == us.pid for s in store.standbys()))
        time.sleep(HEARTBEAT * 1.5)  # the standby mid-cycle, as a real one would be
        killed = time.time()
        eu.send_signal(signal.SIGKILL)
        eu.wait()
        until(lambda: driver(store) == us.pid, TTL + 10)
        return store.lease().acquired - killed  # the database's clock: same host here
    finally:
        for proc in (eu, us):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        if store is not None:
            store.close()


def opened(ref: PostgresState, timeout: float = 30.0) -> Store:
    """The rollout's store once its first engine has recorded it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return open_store(ref, create=False)
        except StoreMissing:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> None:
    took = []
    with database() as url, tempfile.TemporaryDirectory() as logs:
        if url is None:
            return
        os.environ["XDG_STATE_HOME"] = logs
        for _ in range(RUNS):
            with tempfile.TemporaryDirectory() as tmp:
                took.append(one_run(url, Path(tmp)))
    s = summary(took)
    bound = TTL + HEARTBEAT
    print(f"driver killed → standby driving: median {s['median']:.2f} s (min {s['min']:.2f}, max {s['max']:.2f}) over {s['n']} runs; "
          f"bound {bound:g} s")
    emit("takeover", {"unit": "s", **s, "ttl": TTL, "baseline": bound, "target": bound, "met": s["max"] <= bound})


if __name__ == "__main__":
    main()
