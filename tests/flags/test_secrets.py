"""Secrets: the `warroom secret` verb, and no token anywhere a human or a file can see it.

The leak test uses recognisable tokens, drives every provider that takes one through
success and failure (including a flag service that echoes the Authorization header in
its error answers), runs the CLI verbs on the resulting state, and greps everything:
exception text, captured output and logs, the verbs' output, the SQLite store's bytes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import keyring
import pytest
import yaml
from keyrings.alt.file import PlaintextKeyring

from tests.flags.conftest import FLAG_TOKEN, OPERATOR, UNLEASH_TOKEN
from tests.support.loopback import Loopback
from warroom.core import secrets
from warroom.core.flagstate import FlagState
from warroom.flags.base import FlagError
from warroom.flags.registry import make_provider
from warroom.plan.sources import FlagProviderConfig

WRONG_TOKEN = "SECRET-WRONG-7f3a9"
WRONG_REF = "env:WARROOM_TEST_WRONG_TOKEN"
# Basic auth travels as base64(user:password): the password never appears as such.
BASIC_PASSWORD = "SECRET-BASIC-7f3a9/+x"
BASIC = base64.b64encode(f"launch:{BASIC_PASSWORD}".encode()).decode()
RECOGNISABLE = (FLAG_TOKEN, UNLEASH_TOKEN, WRONG_TOKEN, "SECRET-UNLEASH-7f3a9", "SECRET-KEYRING-7f3a9",
                BASIC_PASSWORD, BASIC, BASIC[:16])  # a cut echo must not leave the start of it either


def warroom(*args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "warroom", *args], input=stdin, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def assert_clean(where: str, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in RECOGNISABLE:
        assert secret.encode() not in data, f"{secret} leaked into {where}"


async def test_no_token_in_errors_output_logs_journal_or_store(flag_service, flag_token, unleash, unleash_token,
                                                               unleash_feature, make_flag_engine, monkeypatch,
                                                               tmp_path, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("WARROOM_TEST_WRONG_TOKEN", WRONG_TOKEN)
    errors: list[str] = []

    async def expect_failure(settings: dict, name: str = "f", state: FlagState = FlagState(True, 50.0)) -> None:
        p = make_provider(FlagProviderConfig.model_validate(settings), tmp_path)
        try:
            with pytest.raises(FlagError) as info:
                await p.write_verified(name, state)
            errors.extend([str(info.value), info.value.reason, repr(info.value)])
            if settings["token"] != WRONG_REF:  # a wrong token stays wrong; the others succeed once healthy
                flag_service.recover()
                await p.write_verified(unleash_feature if settings["provider"] == "unleash" else "f", FlagState(True, 5.0))
        finally:
            await p.close()

    http = {"provider": "http", "url": flag_service.url, "token": flag_token, "timeout": "30s"}  # what a busy machine needs
    flag_service.fail(500)  # its error answer quotes our Authorization header
    await expect_failure(http)
    await expect_failure({**http, "token": WRONG_REF})  # 401 quoting the wrong token
    unanswered = threading.Event()
    flag_service.delay = unanswered  # answered only after the client gave up: a timeout
    try:
        await expect_failure({**http, "timeout": "2s"})
    finally:
        unanswered.set()
    unleash_settings = {"provider": "unleash", "url": unleash, "token": unleash_token}
    await expect_failure({**unleash_settings, "token": WRONG_REF}, unleash_feature)
    await expect_failure(unleash_settings, "no-such-feature")
    assert len(errors) == 15 and "Bearer ***" in errors[0] and "HTTP 401" in errors[3]

    # Through the engine: success, then a rollback through 503s that quote the token, journaled attempt by attempt.
    flag_service.flags.pop("f")  # a new rollout starts from an unexposed flag (one already on would pause it)
    engine = await make_flag_engine(http, "f")
    await engine.tick()
    await engine.step_up(OPERATOR)
    flag_service.fail(503, count=5)  # three writes, and the reads before each retry
    assert await asyncio.wait_for(engine.rollback(OPERATOR, "drill"), 20) == "rolled back"
    assert sum(e.kind == "rollback.attempt" for e in engine.store.entries()) == 3
    await engine.close()

    # A Prometheus source with the same bearer token, whose failing server quotes it back:
    # its errors reach the journal (source.error), and from there every verb and the report.
    # Another one with basic auth behind a proxy whose 500s quote the request's headers, in
    # JSON (kept, up to a line) and in text (summarised): the base64 must go the same way.
    env = {"WARROOM_TEST_FLAG_TOKEN": FLAG_TOKEN, "WARROOM_TEST_BASIC_PW": BASIC_PASSWORD}
    plan = str(tmp_path / "plan.yaml")
    data = yaml.safe_load(Path(plan).read_text())
    data["sources"]["prom"] = {"type": "prometheus", "url": flag_service.url, "auth": {"bearer": flag_token}, "timeout": "1s"}
    data["panes"].append({"id": "prom_errors", "title": "Errors (Prometheus)", "source": "prom", "query": "up", "unit": "ratio"})

    def echo_headers(request):
        said = f"Authorization was {request.headers.get('authorization')}, then {request.headers}"
        if "json" in request.path:
            return 500, {"Content-Type": "application/json"}, json.dumps({"error": said}).encode()
        return 500, {"Content-Type": "text/plain"}, said.encode()

    echo = Loopback(echo_headers)
    for name in ("json", "text"):
        data["sources"][f"basic_{name}"] = {"type": "prometheus", "url": f"{echo.url}/{name}", "timeout": "1s",
                                            "auth": {"basic": {"username": "launch", "password": "env:WARROOM_TEST_BASIC_PW"}}}
        data["panes"].append({"id": f"basic_{name}", "title": f"Basic {name}", "source": f"basic_{name}", "query": "up"})
    data["poll_interval"] = "1s"
    with open(plan, "w") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    flag_service.fail(500)
    html = tmp_path / "report.html"
    try:
        outputs = [warroom(verb, plan, *extra, env=env) for verb, *extra in
                   (("run", "--headless", "--for", "1s"), ("status", "--json"), ("journal", "--json"), ("check",),
                    ("rollback",), ("report",), ("report", "--format", "html", "-o", str(html)))]
    finally:
        echo.stop()
    assert any(r.headers.get("authorization") == f"Basic {BASIC}" for r in echo.requests)  # it was sent, and echoed
    outputs.append(warroom("secret", "get", flag_token, env=env))
    assert "resolves, *** (18 characters)" in outputs[-1].stdout
    check_out = outputs[3].stdout
    assert "HTTP 500: flag backend unavailable (request had Bearer ***)" in check_out
    assert "error: HTTP 500 Internal Server Error: flag backend unavailable (request had Bearer ***)" in check_out
    journal = [json.loads(line) for line in outputs[2].stdout.splitlines()]
    source_errors = {e["data"]["source"]: e["message"] for e in journal if e["kind"] == "source.error"}
    assert "Bearer ***" in source_errors["prom"]
    assert source_errors["basic_json"].startswith("source basic_json: HTTP 500 Internal Server Error: Authorization was Basic ***, then")
    assert source_errors["basic_text"].startswith("source basic_text: HTTP 500 Internal Server Error: not JSON: \"Authorization was Basic ***, then")
    assert "error: HTTP 500 Internal Server Error: Authorization was Basic ***" in check_out
    assert "source prom" in outputs[5].stdout and html.exists()

    for i, message in enumerate(errors):
        assert_clean(f"exception text {i}: {message}", message)
    for proc in outputs:
        assert_clean(f"`{' '.join(proc.args[3:])}` output", proc.stdout + proc.stderr)
    captured = capfd.readouterr()
    assert_clean("captured stdout/stderr", captured.out + captured.err)
    assert_clean("log records", "\n".join(r.getMessage() for r in caplog.records))
    state_files = list(tmp_path.glob("state.sqlite*"))
    assert state_files
    for path in [*state_files, html]:
        assert_clean(str(path), path.read_bytes())
    assert_clean("the plan", yaml.safe_dump(yaml.safe_load(Path(plan).read_text())))


@pytest.fixture
def file_keyring(tmp_path, monkeypatch):
    """The file backend a headless bastion can use, in a temporary data directory."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    previous = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    yield
    keyring.set_keyring(previous)


async def test_secret_verb_round_trip_and_a_provider_using_the_keyring(file_keyring, flag_service):
    ref = "keyring:warroom-test/flag-token"
    stored = warroom("secret", "set", ref, stdin="SECRET-KEYRING-7f3a9\n")
    assert stored.returncode == 0 and stored.stdout == f"{ref}: stored, *** (20 characters)\n"
    got = warroom("secret", "get", ref)
    assert got.returncode == 0 and got.stdout == f"{ref}: resolves, *** (20 characters)\n"
    assert_clean("secret set/get output", stored.stdout + stored.stderr + got.stdout + got.stderr)

    # The provider authenticates with what the verb stored (the service wants FLAG_TOKEN: store that).
    assert warroom("secret", "set", ref, stdin=FLAG_TOKEN).returncode == 0
    p = make_provider(FlagProviderConfig.model_validate({"provider": "http", "url": flag_service.url, "token": ref}), ".")
    try:
        assert await p.write_verified("f", FlagState(True, 5.0)) == FlagState(True, 5.0)
    finally:
        await p.close()

    assert warroom("secret", "delete", ref).stdout == f"{ref}: deleted\n"
    gone = warroom("secret", "get", ref)
    assert gone.returncode == 1 and f"no such entry in the keyring; store it with `warroom secret set {ref}`" in gone.stderr
    with pytest.raises(secrets.SecretError, match="no such entry"):
        secrets.resolve(ref)


def test_secret_verb_without_a_keyring_backend_or_with_a_value_on_the_command_line():
    headless = warroom("secret", "set", "keyring:warroom-test/x", stdin="value\n",
                       env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    assert headless.returncode == 1
    assert "no usable keyring backend" in headless.stderr and "env:NAME" in headless.stderr
    assert "PYTHON_KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring" in headless.stderr
    # The value never goes on the command line (shell history, ps): there is no argument for it.
    on_argv = warroom("secret", "set", "keyring:warroom-test/x", "SECRET-ON-ARGV")
    assert on_argv.returncode == 2 and "unrecognized arguments" in on_argv.stderr
    env_ref = warroom("secret", "set", "env:SOME_TOKEN", stdin="v\n")
    assert env_ref.returncode == 1 and "export SOME_TOKEN=" in env_ref.stderr
    missing = warroom("secret", "get", "env:WARROOM_TEST_UNSET_TOKEN")
    assert missing.returncode == 1 and "environment variable WARROOM_TEST_UNSET_TOKEN is not set" in missing.stderr


def test_a_secret_travels_in_several_encodings_and_each_is_redacted():
    # A webhook URL: its path and query are the secret; a receiver quotes them, not the URL.
    secrets.remember_url("https://hooks.example.com/services/T0AB12CD3/B0EF45GH6/aBcDeFgHiJkLmNoPqRsTuVwX?sig=c2VjcmV0&fmt=json")
    for echoed in ("/services/T0AB12CD3/B0EF45GH6/aBcDeFgHiJkLmNoPqRsTuVwX", "T0AB12CD3", "aBcDeFgHiJkLmNoPqRsTuVwX", "c2VjcmV0"):
        assert secrets.redact(f"no route for {echoed}.") == "no route for ***."
    assert secrets.redact("services hooks fmt json") == "services hooks fmt json"  # words that are no secret stay
    # Credentials in a URL go out URL-decoded, as basic auth.
    secrets.remember_url("https://launch:p%40ss-SECRET-0815@prom.example.com/")
    sent = base64.b64encode(b"launch:p@ss-SECRET-0815").decode()
    for form in ("p@ss-SECRET-0815", "p%40ss-SECRET-0815", sent, f"Basic {sent}", sent.rstrip("=")):
        assert "SECRET" not in secrets.redact(form) and "0815" not in secrets.redact(form)
    # A JSON echo escapes what it quotes.
    secrets.remember('SECRET"quoted\\0815')
    assert secrets.redact(json.dumps({"auth": 'SECRET"quoted\\0815'})) == '{"auth": "***"}'


def test_an_excerpt_is_redacted_before_it_is_cut():
    secrets.remember("SECRET-EXCERPT-0815")
    text = "x" * 290 + "SECRET-EXCERPT-0815" + "y" * 5_000_000
    cut = secrets.excerpt(text)
    assert "SECRET" not in cut and cut.startswith("x" * 290 + "***")
    assert cut.endswith(f"… ({5_000_000 - 7} bytes cut)")
