"""Starting the real servers warroom is tested and benchmarked against: the `warroom
simulate` exporter and the `prometheus` binary scraping it. Plain Python (no pytest), so
bench/ uses the same code as the fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tests.helpers import free_port

SCRAPE = 1.0  # seconds; the Prometheus fixture's scrape and evaluation interval


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_send(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- the exporter

def write_flags(path: Path, rollout: float, flag: str = "realtime-features") -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"flags": {flag: {"enabled": rollout > 0, "rollout_percentage": rollout, "user_segments": []}}}))
    os.replace(tmp, path)


@dataclass
class Exporter:
    port: int
    flags: Path | None  # the local store it follows; None: the plan's own flag provider (--plan)
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_exporter(flags: Path | None, *extra: str) -> Exporter:
    port = free_port()
    follow = ["--flags", str(flags)] if flags is not None else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "warroom", "simulate", "--serve", f"127.0.0.1:{port}", *follow, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    exporter = Exporter(port, flags, proc)
    try:
        wait_until(lambda: proc.poll() is None and http_get(exporter.url + "/-/healthy")[0] == 200, 15, "the exporter")
    except AssertionError:
        _stop(proc)
        raise AssertionError(f"exporter did not start: {proc.stderr.read().decode() if proc.stderr else ''}") from None
    return exporter



# ---------------------------------------------------------------- Prometheus

@dataclass
class PrometheusServer:
    binary: str
    workdir: Path
    targets: list[str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or restart, same port and data dir) and wait until it answers queries."""
        config = self.workdir / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": f"{SCRAPE:g}s", "evaluation_interval": f"{SCRAPE:g}s", "scrape_timeout": "900ms"},
            "scrape_configs": [{"job_name": "warroom-sim", "static_configs": [{"targets": self.targets}]}],
        }))
        log = open(self.workdir / "prometheus.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=log, stderr=log,
        )
        log.close()
        try:
            wait_until(lambda: self.proc.poll() is None and http_get(self.url + "/-/ready")[0] == 200, 30, "Prometheus /-/ready")
        except AssertionError:
            self.stop()
            raise AssertionError("Prometheus did not start:\n" + (self.workdir / "prometheus.log").read_text()[-2000:]) from None

    def wait_for_data(self, query: str = "up", minimum: int = 1) -> None:
        """Wait until `query` has at least `minimum` samples of history (rate() needs two)."""
        url = f"{self.url}/api/v1/query?query=" + urllib.parse.quote(f"count_over_time(({query})[1m:1s])")

        def enough() -> bool:
            status, body = http_get(url)
            result = json.loads(body)["data"]["result"] if status == 200 else []
            return bool(result) and float(result[0]["value"][1]) >= minimum

        wait_until(enough, 30, f"{minimum} samples of {query}", every=0.2)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None
