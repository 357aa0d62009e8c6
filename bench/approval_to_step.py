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
from tests.support.servers import STORE_PASSWORD, start_postgres  # noqa: E402
from warroom.plan.state import PostgresState  # noqa: E402
from warroom.store import open_store  # noqa: E402

APPROVALS = 1 if SMOKE else int(os.environ.get("WARROOM_BENCH_APPROVALS", "50"))
POLL = 1.0
PG_PASSWORD, ROLE_PASSWORD = "WARROOM_BENCH_PG_PASSWORD", "WARROOM_BENCH_ROLE_PASSWORD"
WARROOM = [sys.executable, "-m", "warroom"]


def psql(port: int, db: str, sql: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-p", str(port), "-d", db, "-v", "ON_ERROR_STOP=1", "-qtAc", sql],
                   check=True, capture_output=True, text=True)


def plan(folder: Path, url: str, rollout: str, role: str) -> Path:
    phases = [{"name": f"Step {i}", "flags": {"feature": p}, "approvals": {"roles": {"security": 1}}}
              for i, p in enumerate((1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100), 1)]
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


def wait_for(check, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.005)
    raise TimeoutError("the engine did not answer")


def main() -> None:
    port = start_postgres()
    db = f"warroom_bench_approval_{os.getpid()}"
    role = f"bench_sec_{uuid.uuid4().hex[:6]}"
    os.environ[PG_PASSWORD], os.environ[ROLE_PASSWORD] = STORE_PASSWORD, "bench-role-pw"
    psql(port, "postgres", f"CREATE DATABASE {db} OWNER warroom_store")
    psql(port, db, f"CREATE ROLE {role} LOGIN PASSWORD 'bench-role-pw'")
    latencies: list[float] = []
    baseline: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["XDG_STATE_HOME"] = tmp
            url = f"postgresql://warroom_store@127.0.0.1:{port}/{db}"
            done = 0
            while done < APPROVALS:
                rollout = f"bench-{uuid.uuid4().hex[:8]}"
                folder = Path(tmp) / rollout  # its own flag file: a new rollout over exposed flags would start paused
                folder.mkdir()
                path = plan(folder, url, rollout, role)
                subprocess.run([*WARROOM, "up", str(path)], check=True, capture_output=True)
                psql(port, db, f"GRANT USAGE ON SCHEMA warroom TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA warroom TO {role}; "
                               f"GRANT INSERT ON warroom.commands TO {role}; GRANT USAGE ON ALL SEQUENCES IN SCHEMA warroom TO {role}")
                store = open_store(PostgresState(url=url, password=f"env:{PG_PASSWORD}", rollout=rollout))
                security = open_store(PostgresState(url=f"postgresql://{role}@127.0.0.1:{port}/{db}", password=f"env:{ROLE_PASSWORD}",
                                                    rollout=rollout))
                try:
                    for phase in range(1, 14):
                        if done >= APPROVALS:
                            break
                        asked = subprocess.run([*WARROOM, "step", str(path)], capture_output=True, text=True)  # asks for the sign-off
                        if asked.returncode:
                            raise SystemExit(f"step {phase} refused: {asked.stderr}")
                        t0 = time.time()
                        probe = store.send_command("ack", {}, {"user": "bench"}, t0)  # answered at once: no drift to acknowledge
                        answered = wait_for(lambda: (c := store.command(probe)) is not None and c.done and c)  # noqa: B023
                        baseline.append(answered.finished - t0)
                        sent = time.time()
                        security.send_command("approve", {"note": "bench"}, {"user": "bench"}, sent)
                        outcome = wait_for(lambda: [e for e in store.iter_entries(kinds=("step.outcome",))  # noqa: B023
                                                    if e.data.get("entered_phase") == phase])  # noqa: B023
                        latencies.append(outcome[0].ts - sent)
                        done += 1
                finally:
                    subprocess.run([*WARROOM, "down", str(path), "--force"], capture_output=True)
                    store.close()
                    security.close()
    finally:
        psql(port, "postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        psql(port, "postgres", f"DROP ROLE IF EXISTS {role}")
    s, b = summary(latencies), summary(baseline)
    target = POLL + 0.150
    print(f"approval → step applied: p50 {s['median'] * 1000:.0f} ms, p99 {s['p99'] * 1000:.0f} ms over {s['n']} sign-offs; "
          f"a command answered at once p50 {b['median'] * 1000:.0f} ms")
    emit("approval_to_step", {"unit": "s", **s, "baseline": b["median"], "target": target, "met": s["p99"] <= target})


if __name__ == "__main__":
    main()
