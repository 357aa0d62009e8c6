"""A sign-off → the step it allows applied: an operator's approval queued in the store (PostgreSQL,
their own database role, as on a war room across hosts) until the engine journals the step's
outcome (flags written and read back). Target: p99 ≤ one poll interval + 150 ms. Baseline in the
same run: the same engine's answer to a command it refuses at once (an `ack` with no drift).
WARROOM_BENCH_APPROVALS sets the number of sign-offs (a quick look: 10).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from common import ROOT, SMOKE, emit, summary

sys.path.insert(0, str(ROOT))
from tests.support.servers import STORE_PASSWORD, grant_operators, operator_roles, postgres_database, start_postgres  # noqa: E402
from tests.support.waiting import until  # noqa: E402
from warroom.plan.state import PostgresState  # noqa: E402
from warroom.store import Store, open_store  # noqa: E402

APPROVALS = 1 if SMOKE else int(os.environ.get("WARROOM_BENCH_APPROVALS", "50"))
POLL = 1.0
EXPOSURES = (1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)  # a sign-off before each
PHASES = len(EXPOSURES)
PG_PASSWORD, ROLE_PASSWORD = "WARROOM_BENCH_PG_PASSWORD", "WARROOM_BENCH_ROLE_PASSWORD"
WARROOM = [sys.executable, "-m", "warroom"]


def plan(folder: Path, url: str, rollout: str, role: str) -> Path:
    phases = [{"name": f"Step {i}", "flags": {"feature": p}, "approvals": {"roles": {"security": 1}}} for i, p in enumerate(EXPOSURES, 1)]
    data = {
        "rollout": {"name": "bench-approval", "environment": "drill"},
        "sources": {"sim": {"type": "simulator", "seed": 5}},
        "flag_provider": {"provider": "local", "path": "flags.json"},
        "state": {"url": url, "password": f"env:{PG_PASSWORD}", "rollout": rollout},
        "poll_interval": f"{POLL:g}s",
        "roles": {"security": {"members": [role]}},
        "phases": phases,
    }
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def answered_at_once(store: Store) -> float:
    """Seconds until the engine answers a command it refuses at once (an `ack` with no drift)."""
    sent = time.time()
    probe = store.send_command("ack", {}, {"user": "bench"})
    answered = until("the engine's answer", lambda: (c := store.command(probe)) is not None and c.done and c, every=0.005)
    return answered.finished - sent


def sign_off(path: Path, store: Store, security: Store, phase: int) -> float:
    """Ask for the step into `phase`, then approve it as the security role: seconds until its outcome."""
    asked = subprocess.run([*WARROOM, "step", str(path)], capture_output=True, text=True)
    if asked.returncode:
        raise SystemExit(f"step {phase} refused: {asked.stderr}")
    sent = time.time()
    security.send_command("approve", {"note": "bench"}, {"user": "bench"})
    outcome = until("the step's outcome", lambda: [e for e in store.iter_entries(kinds=("step.outcome",))
                                                   if e.data.get("entered_phase") == phase], every=0.005)
    return outcome[0].ts - sent


def main() -> None:
    port = start_postgres()
    db = f"warroom_bench_approval_{os.getpid()}"
    role = f"bench_sec_{uuid.uuid4().hex[:6]}"
    os.environ[PG_PASSWORD], os.environ[ROLE_PASSWORD] = STORE_PASSWORD, "bench-role-pw"
    latencies: list[float] = []
    baseline: list[float] = []
    with postgres_database(port, db) as url, operator_roles(port, db, role, password=lambda _: "bench-role-pw"), \
            tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_STATE_HOME"] = tmp
        while len(latencies) < APPROVALS:
            rollout = f"bench-{uuid.uuid4().hex[:8]}"
            folder = Path(tmp) / rollout  # its own flag file: a new rollout over exposed flags would start paused
            folder.mkdir()
            path = plan(folder, url, rollout, role)
            subprocess.run([*WARROOM, "up", str(path)], check=True, capture_output=True)
            grant_operators(port, db, role)
            store = open_store(PostgresState(url=url, password=f"env:{PG_PASSWORD}", rollout=rollout))
            security = open_store(PostgresState(url=f"postgresql://{role}@127.0.0.1:{port}/{db}", password=f"env:{ROLE_PASSWORD}",
                                                rollout=rollout))
            try:
                for phase in range(1, min(PHASES, APPROVALS - len(latencies)) + 1):
                    baseline.append(answered_at_once(store))
                    latencies.append(sign_off(path, store, security, phase))
            finally:
                subprocess.run([*WARROOM, "down", str(path), "--force"], capture_output=True)
                store.close()
                security.close()
    s, b = summary(latencies), summary(baseline)
    target = POLL + 0.150
    print(f"approval → step applied: p50 {s['median'] * 1000:.0f} ms, p99 {s['p99'] * 1000:.0f} ms over {s['n']} sign-offs; "
          f"a command answered at once p50 {b['median'] * 1000:.0f} ms")
    emit("approval_to_step", {"unit": "s", **s, "baseline": b["median"], "target": target, "met": s["p99"] <= target})


if __name__ == "__main__":
    main()
