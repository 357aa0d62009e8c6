"""Who may read the status page and what it can reveal: signed links that expire (expired, forged and
replayed-after-expiry ones get 401), 404 off its two routes, no path reaching a file, no route that
writes; hostile text from plans, people and servers shown as text; no secret, token or internal URL."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import httpx
import pytest

from tests.page.conftest import PAGE_KEY, WARROOM
from tests.support.loopback import serving
from tests.support.waiting import until
from warroom.page.access import COOKIE, sign

ROLLOUT = "test-launch"


def keyed() -> dict[str, str]:
    return {**os.environ, "WARROOM_PAGE_KEY": PAGE_KEY}


def test_with_a_key_only_a_signed_unexpired_link_opens_the_page(serve):
    served = serve(env=keyed())
    assert served.get().status_code == 401 and "no link" in served.get().text
    now = time.time()
    assert served.get(params={"t": sign(PAGE_KEY, ROLLOUT, int(now) - 5)}).status_code == 401  # expired
    forged = sign("another-key-entirely", ROLLOUT, int(now) + 3600)
    assert served.get(params={"t": forged}).status_code == 401
    assert served.get(params={"t": sign(PAGE_KEY, "another-rollout", int(now) + 3600)}).status_code == 401  # another page's link
    assert served.get(cookies={COOKIE: forged}).status_code == 401
    assert served.get("/events", cookies={COOKIE: forged}).status_code == 401

    printed = served.verb("page", "--link", "--for", "1h", env=keyed())
    assert printed.returncode == 0, printed.stderr
    link = printed.stdout.strip()
    assert link.startswith("http://127.0.0.1:8080/?t=") and "valid for 1h" in printed.stderr
    first = served.get("/?" + link.partition("?")[2])
    # The token goes into an HttpOnly cookie and away from the address bar: the page never holds it.
    assert first.status_code == 303 and first.headers["location"] == "./"
    assert "httponly" in first.headers["set-cookie"].lower() and "samesite=strict" in first.headers["set-cookie"].lower()
    page = served.get(cookies={COOKIE: first.cookies[COOKIE]})
    assert page.status_code == 200 and "RUNNING" in page.text
    assert first.cookies[COOKIE] not in page.text and PAGE_KEY not in page.text


def test_a_link_and_its_cookie_replayed_after_expiry_get_401(serve):
    served = serve(env=keyed())
    token = sign(PAGE_KEY, ROLLOUT, int(time.time()) + 2)
    first = served.get(params={"t": token})
    assert first.status_code == 303
    assert served.get(cookies={COOKIE: token}).status_code == 200
    until("the link expiring", lambda: served.get(cookies={COOKIE: token}).status_code == 401)
    assert served.get(params={"t": token}).status_code == 401 and "expired" in served.get(params={"t": token}).text
    assert served.get("/events", cookies={COOKIE: token}).status_code == 401


def test_only_two_routes_answer_none_writes_and_no_path_reaches_a_file(serve):
    served = serve()
    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/events/../../../etc/passwd", "/static/..%2f..%2fetc/passwd",
                 "//etc/passwd", "/plan.yaml", "/state.sqlite", "/index.html", "/events/x"):
        answer = httpx.get(served.url + path, timeout=10)
        assert answer.status_code == 404 and "root:" not in answer.text, path
    with httpx.Client() as client:  # a raw request line, not normalised by the client
        raw = client.send(httpx.Request("GET", served.url + "/x", extensions={"target": b"/../../../../etc/passwd"}))
        assert raw.status_code == 404 and "root:" not in raw.text
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert httpx.request(method, served.url + "/", timeout=10).status_code == 405
        assert httpx.request(method, served.url + "/events", timeout=10).status_code == 405
    assert not [k for k in served.verb("journal").stdout.splitlines() if "status-page" in k]  # it sent nothing


def test_a_page_off_loopback_needs_a_key(serve, tmp_path):
    served = serve()
    refused = served.verb("page", "--listen", "0.0.0.0:0")
    assert refused.returncode == 2 and "is not loopback" in refused.stderr


def test_hostile_text_is_shown_as_text_and_no_secret_or_internal_address_reaches_the_page(serve, monkeypatch):
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>\x1b]0;pwned\x07\x1b[2J'

    def prometheus(request):  # a server's error, in the API's own shape, with markup, escapes and its internal address
        error = {"status": "error", "errorType": "unavailable", "error": f"{hostile} upstream http://prom.internal:9090/api/v1/query failed"}
        return 503, {"Content-Type": "application/json"}, json.dumps(error).encode()

    with serving(prometheus) as server:
        monkeypatch.setenv("WARROOM_TEST_HOOK", "https://hooks.example.com/services/T000/B000/XYZsecret123")
        served = serve({
            "rollout": {"name": f"payments {hostile}", "environment": "production", "description": hostile},
            "sources": {"sim": {"type": "simulator", "seed": 1, "flag": "feature", "noise": 0},
                        "prom": {"type": "prometheus", "url": server.url, "backfill": "0s", "timeout": "1s"}},
            "panes": [{"id": "errors", "title": "Error rate", "query": "error_rate", "unit": "ratio", "warn": 0.001, "breach": 0.01},
                      {"id": "upstream", "title": f"Upstream {hostile}", "query": "up", "source": "prom", "unit": "ratio"}],
            "guardrails": [{"id": "errors", "pane": "errors", "above": 0.01, "for": "30s", "action": "rollback"},
                           {"id": "upstream", "pane": "upstream", "below": 0.5, "for": "1m", "action": "pause"}],
            "notify": [{"type": "slack", "url": "env:WARROOM_TEST_HOOK"}],
            "rollback": {"steps": [{"name": "scale down", "run": ["kubectl", "scale", "deploy/payments-secret-runbook", "--replicas=0"]}]},
        }, force="the upstream server is down on purpose")
        served.verb("pause", "--reason", f"hold on {hostile}")
        assert served.verb("freeze", "--until", "2h", "--reason", f"freeze for {hostile}").returncode == 0
        until("the pause, the freeze and the server's error on the page",
              lambda: "PAUSED" in (text := served.get().text) and 'id="freeze"' in text and "HTTP 503" in text)
        page = served.get().text
    body = page.split("<body>", 1)[1]
    # Markup is text: the only elements are the template's own, and the one script is ours.
    assert "<script>alert" not in page and "<img" not in page and body.count("<script>") == 1
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "\x1b" not in page and "\x07" not in page and "pwned" not in page
    assert "hold on &lt;script&gt;" in page  # the pause's reason, quoted from a person
    assert "(freeze for &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page  # a freeze's reason, in its banner
    # No secret, token, internal address or runbook detail.
    for leak in ("XYZsecret123", "hooks.example.com", "prom.internal", server.url, "kubectl", "payments-secret-runbook", PAGE_KEY):
        assert leak not in page, leak
    assert "[internal address]" in page
    assert re.search(r"Content-Security-Policy", str(served.get().headers), re.I)


def test_the_key_can_come_from_the_keyring_and_a_link_lasts_what_for_says(serve, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")  # the file backend a headless bastion has
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "keyring"))
    monkeypatch.delenv("WARROOM_PAGE_KEY", raising=False)
    ref = "keyring:warroom-test/page-links"
    stored = subprocess.run([*WARROOM, "secret", "set", ref], input=PAGE_KEY, capture_output=True, text=True, timeout=60)
    assert stored.returncode == 0, stored.stderr
    served = serve({"page": {"key": ref}})
    assert served.get().status_code == 401  # the page took its key from the keyring: a link is needed
    printed = served.verb("page", "--link", "--for", "24h")
    assert printed.returncode == 0 and "valid for 24h" in printed.stderr, printed.stderr
    token = printed.stdout.strip().partition("?t=")[2]
    expiry = int(token.partition(".")[0])
    assert abs(expiry - (time.time() + 86400)) < 60 and token == sign(PAGE_KEY, ROLLOUT, expiry)
    first = served.get(params={"t": token})
    assert first.status_code == 303 and served.get(cookies={COOKIE: first.cookies[COOKIE]}).status_code == 200
    assert PAGE_KEY not in printed.stdout + printed.stderr
    subprocess.run([*WARROOM, "secret", "delete", ref], capture_output=True, timeout=60, check=True)
    missing = served.verb("page", "--link")
    assert missing.returncode != 0 and f"warroom secret set {ref}" in missing.stderr, missing.stderr


def test_with_tls_the_page_is_served_over_https_and_its_cookie_is_secure(serve, self_signed):
    cert, key = self_signed
    served = serve({"page": {"tls": {"cert": str(cert), "key": str(key)}}}, env=keyed())
    first = served.get(params={"t": sign(PAGE_KEY, ROLLOUT, int(time.time()) + 3600)})
    assert served.url.startswith("https://") and first.status_code == 303 and "secure" in first.headers["set-cookie"].lower()
    assert served.get(cookies={COOKIE: first.cookies[COOKIE]}).status_code == 200
    with pytest.raises(httpx.HTTPError):  # no plain HTTP on the same port
        httpx.get(served.url.replace("https://", "http://") + "/", timeout=10)
    printed = served.verb("page", "--link", env=keyed())
    assert printed.stdout.startswith("https://127.0.0.1:8080/?t=")
