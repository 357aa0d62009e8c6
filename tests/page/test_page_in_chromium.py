"""The status page in a real browser (Debian's headless Chromium) on a phone and a desktop, with
JavaScript on and off: the DOM's text says the state, phase, exposure and each guardrail; the
screenshots are the README's (written to docs/ when WARROOM_DOCS_SCREENSHOTS=1)."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from tests.support.chromium import DevTools, Loaded, dump_dom, screenshot
from tests.support.waiting import until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZES = {"phone": (390, 844), "desktop": (1440, 900)}
GUARDRAILS = [{"id": "errors", "pane": "errors", "above": 0.01, "for": "30s", "action": "rollback"},
              {"id": "p95", "pane": "p95", "above": 0.5, "for": "1m", "action": "pause"}]


@pytest.mark.parametrize("script", [True, False], ids=["js-on", "js-off"])
@pytest.mark.parametrize("device", SIZES)
def test_the_page_reads_the_same_on_a_phone_and_a_desktop_with_or_without_javascript(serve, tmp_path, device, script):
    served = serve({"guardrails": GUARDRAILS})
    until("the page in phase 1", lambda: "1/3 Canary 5%" in served.get().text)
    shot = tmp_path / f"status-page-{device}.png"
    if script:
        loaded = dump_dom(served.url + "/", tmp_path / "profile", size=SIZES[device])
        assert screenshot(served.url + "/", tmp_path / "profile", shot, size=SIZES[device]) == SIZES[device]
    else:  # --dump-dom and --screenshot need script themselves: with it off, the page is read over DevTools
        chromium = DevTools(tmp_path / "devtools")
        try:
            tab = chromium.open(served.url + "/", size=SIZES[device], script=False)
            loaded = Loaded(chromium.dom(tab), "")
            assert chromium.screenshot(tab, shot) == SIZES[device]
        finally:
            chromium.close()
    assert loaded.text("worst") == "RUNNING" and loaded.text("state") == "RUNNING"
    assert loaded.text("phase") == "1/3 Canary 5%" and loaded.text("exposure") == "feature 5%"
    for guardrail, value, limit in (("errors", r"\d+\.\d+%", "above 1.00% → rollback"), ("p95", r"\d+ ms", "above 500 ms → pause")):
        row = re.search(rf'data-guardrail="{guardrail}">(.*?)</tr>', loaded.dom, re.S).group(1)
        assert re.search(rf'class="value">{value}</td>', row) and limit in row and "within its threshold" in row and "<svg" in row, row
    assert 'aria-current="step">1. Canary 5% · 5%' in loaded.dom
    assert "Refused to" not in loaded.log and "Uncaught" not in loaded.log  # the CSP lets our one script run, nothing else
    assert ('<noscript><meta http-equiv="refresh"' in loaded.dom) and ("<script>" in loaded.dom)
    assert shot.stat().st_size > 20_000
    if os.environ.get("WARROOM_DOCS_SCREENSHOTS") and script:
        shutil.copy(shot, os.path.join(ROOT, "docs", shot.name))


def test_with_javascript_the_page_follows_the_launch_live_without_reloading(serve, tmp_path):
    served = serve()
    until("the page in phase 1", lambda: "1/3 Canary 5%" in served.get().text)
    chromium = DevTools(tmp_path / "devtools")
    try:
        tab = chromium.open(served.url + "/", size=SIZES["desktop"], script=True)
        until("the live stream's first page", lambda: 'data-live="on"' in chromium.dom(tab))
        assert served.verb("pause", "--reason", "checking <b>dashboards</b>").returncode == 0
        until("PAUSED shown live", lambda: Loaded(chromium.dom(tab), "").text("state") == "PAUSED")
        page = chromium.dom(tab)
        assert "checking &lt;b&gt;dashboards&lt;/b&gt;" in page and 'data-live="on"' in page
        assert not [e for e in chromium.events if e.get("method") == "Page.loadEventFired"]  # no reload: the stream did it
    finally:
        chromium.close()


@pytest.mark.parametrize("script", [True, False], ids=["js-on", "js-off"])
def test_on_a_phone_a_freeze_in_force_reads_as_the_console_banner_says_it(serve, tmp_path, script):
    served = serve()
    assert served.verb("freeze", "--until", "2h", "--reason", "Black Friday").returncode == 0
    until("the freeze on the page", lambda: 'id="freeze"' in served.get().text)
    chromium = DevTools(tmp_path / "devtools")
    try:
        tab = chromium.open(served.url + "/", size=SIZES["phone"], script=script)
        if script:  # the stream's rendering, not only the first one
            until("the live stream's first page", lambda: 'data-live="on"' in chromium.dom(tab))
        banner = Loaded(chromium.dom(tab), "").text("freeze")
    finally:
        chromium.close()
    assert re.fullmatch(r"FREEZE until (\w{3} \d\d \w{3} )?\d\d:\d\d \(Black Friday\) · rollback allowed", banner), banner
    assert banner == Loaded(served.get().text, "").text("freeze")
