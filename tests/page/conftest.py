"""A real launch and its status page: `warroom up` (the engine, a process of its own), then
`warroom page` (uvicorn on a free loopback port, another process) reading the same state."""

from __future__ import annotations

import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import BASE_PLAN
from tests.support.helpers import free_port
from tests.support.waiting import until

WARROOM = [sys.executable, "-m", "warroom"]
PAGE_KEY = "page-key-Tq8v2LmX93"  # recognisable: no page may ever contain it
UPDATES = {"owner": "Dana Reyes (product)", "every": "15m", "after_incident": "5m", "at": ["09:00", "4 PM"], "zone": "Europe/Berlin"}


@dataclass
class Served:
    folder: Path
    plan: Path
    url: str
    proc: subprocess.Popen
    verify: Any = True  # https: the page's own certificate

    def verb(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([*WARROOM, args[0], str(self.plan), *args[1:]], capture_output=True, text=True, timeout=60,
                                stdin=subprocess.DEVNULL, env=env)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def get(self, path: str = "/", **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, verify=self.verify, **kw)


def launch(folder: Path, changes: dict | None = None, *, force: str | None = None) -> Path:
    """A plan in `folder`, its engine up and in phase 1 (stepped up with --force and this reason when given)."""
    data = yaml.safe_load(BASE_PLAN)
    data.update({"updates": UPDATES, "poll_interval": "1s", **(changes or {})})
    folder.mkdir(parents=True, exist_ok=True)
    plan = folder / "plan.yaml"
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    for verb in (["up"], ["step", *(("--force", "--reason", force) if force else ())]):
        result = subprocess.run([*WARROOM, verb[0], str(plan), *verb[1:]], capture_output=True, text=True, timeout=60,
                                stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr
    return plan


@pytest.fixture
def serve(tmp_path) -> Iterator[Callable[..., Served]]:
    """serve(changes, *page args, env=…) → the launch's page, served by `warroom page` until the test ends."""
    started: list[subprocess.Popen] = []

    def make(changes: dict | None = None, *args: str, env: dict[str, str] | None = None, plan: Path | None = None,
             force: str | None = None) -> Served:
        plan = plan or launch(tmp_path / "launch", changes, force=force)
        port = free_port()
        log = open(plan.parent / f"page-{port}.log", "w")  # noqa: SIM115  (the child has its own copy)
        proc = subprocess.Popen([*WARROOM, "page", str(plan), "--listen", f"127.0.0.1:{port}", *args], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        log.close()
        started.append(proc)
        tls = yaml.safe_load(plan.read_text()).get("page", {}).get("tls")
        scheme, verify = ("https", ssl.create_default_context(cafile=tls["cert"])) if tls else ("http", True)
        served = Served(plan.parent, plan, f"{scheme}://127.0.0.1:{port}", proc, verify)

        def up() -> bool:
            assert proc.poll() is None, (plan.parent / f"page-{port}.log").read_text()
            return served.get("/").status_code in (200, 401)

        until("the status page answering", up, retry_on=(httpx.HTTPError,))
        return served

    yield make
    for proc in started:
        proc.terminate()
        proc.wait(10)
