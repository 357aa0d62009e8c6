"""The page shows a launch's sign-off and freezes as the console does: with a step waiting for its
sign-off (one approver answered) and a freeze in force, the plain page and its live stream say
who is awaited, who answered, the time left and what the timeout does, and the freeze's end,
reason and that rollback stays allowed; `status --json` says the same (real engine, real page)."""

from __future__ import annotations

import getpass
import json

import httpx
import yaml

from tests.conftest import BASE_PLAN
from tests.support.chromium import Loaded
from tests.support.waiting import until


def signed_and_frozen_plan() -> dict:
    phases = yaml.safe_load(BASE_PLAN)["phases"]
    phases[0].update(hold="0s", gates=[], checklist=[])
    phases[1]["approvals"] = {"roles": {"security": 2}, "timeout": "30m", "self_approval": True, "on_timeout": "abort"}
    return {"roles": {"security": {"members": [getpass.getuser(), "carol"]}}, "phases": phases}


def first_event(url: str) -> str:
    with httpx.stream("GET", url + "/events", timeout=30) as events:
        lines = events.iter_lines()
        assert next(lines) == "event: page"
        return "".join(line.removeprefix("data: ") for line in iter(lambda: next(lines), ""))


def test_a_pending_sign_off_and_a_freeze_in_force_read_the_same_on_the_page_its_stream_and_status_json(serve):
    served = serve(signed_and_frozen_plan())
    until("the page in phase 1", lambda: "1/3 Canary 5%" in served.get().text)
    asked = served.verb("step")
    assert asked.returncode == 0 and "awaiting security" in asked.stdout, asked.stdout + asked.stderr
    approved = served.verb("approve", "--note", "dashboards <b>fine</b>")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    frozen = served.verb("freeze", "--until", "2h", "--reason", "Black Friday")
    assert frozen.returncode == 0, frozen.stdout + frozen.stderr

    def agreed() -> tuple[dict, str] | None:
        status = json.loads(served.verb("status", "--json").stdout)
        page = served.get().text
        if not status["freezes"] or "(carol)" not in status["awaiting"] or f'data-tick="{status["tick"]}"' not in page:
            return None
        return status, page

    status, page = until("the sign-off and the freeze in status and on the page, one snapshot", agreed)
    shown = Loaded(page, "")
    # The sign-off: the engine's own words (roles still awaited, time left, what the timeout does), and who answered.
    assert shown.text("awaiting") == status["awaiting"]
    assert status["awaiting"].startswith("awaiting security (carol) ") and status["awaiting"].endswith("→ on timeout: abort")
    assert f"approve</strong> by {getpass.getuser()} as security: dashboards &lt;b&gt;fine&lt;/b&gt;" in page and "<b>fine" not in page
    # The freeze: the console banner's words, until when, why, and that going back is allowed.
    (freeze,) = status["freezes"]
    assert freeze["reason"] == "Black Friday" and freeze["kind"] == "ad hoc"
    banner = shown.text("freeze")
    assert banner.startswith("FREEZE until ") and banner.endswith("(Black Friday) · rollback allowed")
    assert f"<strong>{banner}</strong> — ad hoc by {getpass.getuser()}" in page
    assert shown.text("state") == status["state"] == "RUNNING"
    # The live stream says both too.
    live = first_event(served.url)
    assert 'id="awaiting"' in live and "awaiting security (carol) " in live and "on timeout: abort" in live
    assert f'id="freeze">{banner}</p>' in live


def test_the_recorded_go_no_go_is_on_the_page_in_the_decision_records_words(serve):
    served = serve({"go_no_go": {"criteria": [{"name": "CI green", "external": {"command": ["true"]}}], "timeout": "30m"}})
    until("the page in phase 1", lambda: "1/3 Canary 5%" in served.get().text)
    status = json.loads(served.verb("status", "--json").stdout)
    decision = next(e for e in status["journal"] if e["kind"] == "go_no_go")
    assert decision["message"].startswith("GO for the first exposure: 1/1 criteria pass")
    until("the go/no-go on the page", lambda: Loaded(served.get().text, "").text("go-no-go") == decision["message"])
