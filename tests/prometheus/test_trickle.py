"""A Prometheus that trickles its answer (a byte a second) against real `warroom` processes.

Per-read timeouts never fire on such a server; the source's timeout must bound the whole
request, and no process may wait at exit for a worker thread still reading. These are hang
tests, not speed benchmarks: the whole answer takes minutes to trickle (before the fix every
verb below took about three minutes), so a verb that ends at all within the tests' 60 s has
been ended by its deadline; how long that takes is not asserted (a busy machine is slow).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.prometheus.test_failures import CTX, source
from tests.support.waiting import DEADLINE, until

TIMEOUT = 2.0  # the source's configured timeout in these tests, seconds


def plan(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(f"""
rollout: {{name: trickle, environment: staging}}
sources:
  prom: {{type: prometheus, url: "{url}", timeout: {TIMEOUT:g}s, backfill: 0s}}
flag_provider: {{provider: local, path: flags.json}}
state: state.sqlite
poll_interval: 1s
panes:
  - {{id: errors, title: Errors, query: up, unit: ratio}}
phases:
  - {{name: Beta 5%, flags: {{f: 5}}, hold: 1h}}
""")
    return path


def ended(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "warroom", *args], cwd=cwd, capture_output=True, text=True, timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`warroom {' '.join(args)}` still running after {DEADLINE:g} s against a trickling Prometheus")


async def test_the_timeout_bounds_the_whole_request_and_frees_the_connection(trickle_server):
    src = source(trickle_server.url, timeout=TIMEOUT)
    reading = await asyncio.wait_for(src.query("up", CTX), DEADLINE)  # the whole answer would take minutes
    assert reading.status == "error" and reading.detail.startswith(f"timeout after {TIMEOUT:g}s")
    # The worker hung up too (a per-read timeout would keep it reading until the last byte).
    until("the worker to hang up", lambda: trickle_server.hangups)
    await src.close()


@pytest.mark.slow
def test_verbs_end_by_their_deadline(trickle_server, tmp_path):
    path = str(plan(tmp_path, trickle_server.url))
    status = ended(["status", path], tmp_path)
    assert status.returncode == 0, status.stderr
    assert trickle_server.requests == 0  # status reads the store the engine publishes to, never a source
    check = ended(["check", path], tmp_path)
    assert check.returncode == 7 and f"timeout after {TIMEOUT:g}s" in check.stdout
    asked = trickle_server.requests
    assert asked >= 1
    run = ended(["run", "--headless", "--for", "3s", path], tmp_path)
    assert run.returncode == 0 and "ran for 3s of clock time" in run.stdout, run.stdout + run.stderr
    assert trickle_server.requests > asked


@pytest.mark.slow
def test_sigterm_ends_the_headless_runner_promptly(trickle_server, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "warroom", "run", "--headless", str(plan(tmp_path, trickle_server.url))],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        # A query timed out, and the next poll's request is trickling now.
        assert any("source.error" in line for line in proc.stdout), "the runner ended before its first query timed out"
        os.set_blocking(proc.stdout.fileno(), False)
        until("the next poll's request", lambda: trickle_server.requests >= 2)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the headless runner still runs {DEADLINE:g} s after SIGTERM")
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_worker_still_blocked_never_delays_exit():
    # What the deadline cannot reach (a resolver or a TLS handshake that hangs) must not
    # hold the process at exit either: the pool's threads are not joined.
    code = ("import time; from warroom.sources.transport import DaemonPool; "
            "DaemonPool(2, 'hung').submit(time.sleep, 600); print('answered', flush=True)")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail("the process waited for its blocked worker at exit")
    assert done.returncode == 0 and done.stdout == "answered\n", done.stderr
