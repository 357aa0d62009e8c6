"""A Prometheus that trickles its answer (a byte a second) against real `warroom` processes.

Per-read timeouts never fire on such a server; the source's timeout must bound the whole
request, and no process may wait at exit for a worker thread still reading. Bounds are
generous (three times the configured timeout and more): these are hang tests, not speed
benchmarks; before the fix every verb below took about three minutes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.prometheus.test_failures import CTX, source

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


def timed(args: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "warroom", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`warroom {' '.join(args)}` still running after 60 s against a trickling Prometheus")
    return time.monotonic() - started, done


async def test_the_timeout_bounds_the_whole_request_and_frees_the_connection(trickle_server):
    src = source(trickle_server.url, timeout=TIMEOUT)
    started = time.monotonic()
    reading = await src.query("up", CTX)
    assert reading.status == "error" and reading.detail.startswith(f"timeout after {TIMEOUT:g}s")
    assert time.monotonic() - started < 3 * TIMEOUT
    # The worker hung up too (a per-read timeout would keep it reading for minutes).
    deadline = time.monotonic() + 3 * TIMEOUT
    while not trickle_server.hangups and time.monotonic() < deadline:
        time.sleep(0.1)
    assert trickle_server.hangups and trickle_server.hangups[0] < 3 * TIMEOUT
    await src.close()


@pytest.mark.slow
def test_verbs_end_by_their_deadline(trickle_server, tmp_path):
    path = str(plan(tmp_path, trickle_server.url))
    took, status = timed(["status", path], tmp_path)
    assert status.returncode == 0, status.stderr
    assert took < 3 * TIMEOUT, f"status took {took:.1f}s"
    assert trickle_server.requests == 0  # status reads the store the engine publishes to, never a source
    took, check = timed(["check", path], tmp_path)
    assert check.returncode == 7 and f"timeout after {TIMEOUT:g}s" in check.stdout
    assert took < 3 * TIMEOUT, f"check took {took:.1f}s"
    asked = trickle_server.requests
    assert asked >= 1
    took, run = timed(["run", "--headless", "--for", "3s", path], tmp_path)
    assert run.returncode == 0 and "ran for 3s of clock time" in run.stdout, run.stdout + run.stderr
    assert took < 3 + 3 * TIMEOUT, f"run --for 3s took {took:.1f}s"
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
        time.sleep(1.0)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the headless runner still runs 60 s after SIGTERM")
        took = time.monotonic() - sent
        assert took < 3 * TIMEOUT, f"the runner took {took:.1f}s to end after SIGTERM"
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
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the process waited for its blocked worker at exit")
    took = time.monotonic() - started
    assert done.returncode == 0 and done.stdout == "answered\n", done.stderr
    assert took < 10
