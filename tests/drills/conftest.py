"""Drills on the built-in demo plan, in virtual time, each in its own folder."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.support.loopback import LoopbackHTTPServer
from warroom.core.clock import VirtualClock
from warroom.drills.scenario import Scenario, load_scenario
from warroom.drills.session import prepare, run_headless_drill
from warroom.plan.demo import demo_plan
from warroom.plan.model import Plan
from warroom.reports.scorecard import ScoreCard


async def drill(tmp_path: Path, scenario: Scenario | str, plan: Plan | None = None) -> tuple[ScoreCard, Path, str]:
    """Run a drill headless with its scripted responder; (card, state db, printed output)."""
    scenario = load_scenario(scenario) if isinstance(scenario, str) else scenario
    prepared = prepare(plan or demo_plan(tmp_path / "demo"), scenario, state=str(tmp_path / "drill" / "state.sqlite"))
    out = io.StringIO()
    card, db = await run_headless_drill(prepared, clock=VirtualClock(start=1_800_000_000.0), out=out)
    return card, db, out.getvalue()


class Receiver:
    """A real webhook endpoint on loopback: records JSON bodies, answers 500 to the first `fail_first`."""

    def __init__(self, fail_first: int = 0):
        self.bodies: list[tuple[str, dict]] = []
        self.statuses: list[int] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    status = 500 if len(receiver.statuses) < receiver.fail_first else 200
                    receiver.statuses.append(status)
                    if status == 200:
                        receiver.bodies.append((self.path, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        lock = threading.Lock()
        self.server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def receiver():
    r = Receiver(fail_first=1)
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()
