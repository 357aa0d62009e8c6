"""`warroom check` proves a flag provider writable without changing a flag (issue 21, item 2):
a flag file made immutable (`chattr +i`), its folder immutable or mounted read-only; an HTTP
flag API's token that may only read; an Unleash token the Admin API refuses. And an engine
whose flag file cannot be written says why in plain words, with the whole path."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ALICE, write_plan
from tests.support.helpers import require_binary
from warroom.core.clock import VirtualClock
from warroom.engine.build import build_engine
from warroom.plan.load import load_plan

WARROOM = [sys.executable, "-m", "warroom"]


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[Path]:
    chattr = require_binary("chattr")
    subprocess.run([chattr, "+i", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


def check(plan: Path, *wrapper: str) -> subprocess.CompletedProcess:
    return subprocess.run([*wrapper, *WARROOM, "check", str(plan)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def store_with_flags(folder: Path) -> Path:
    folder.mkdir()
    flags = folder / "flags.json"
    flags.write_text(json.dumps({"flags": {"feature": {"enabled": False, "rollout_percentage": 0, "user_segments": []}}}))
    return flags


@pytest.mark.parametrize("provider", ["local", "flagd"])
def test_check_fails_on_an_immutable_flag_file_naming_it_whole(tmp_path, provider):
    flags = store_with_flags(tmp_path / "a-folder-whose-name-is-long-enough-to-be-cut-on-a-narrow-screen")
    if provider == "flagd":
        flags.write_text(json.dumps({"flags": {"feature": {"state": "DISABLED", "defaultVariant": "off",
                                                           "variants": {"on": True, "off": False}}}}))
    plan = write_plan(tmp_path, {"flag_provider": {"provider": provider, "path": str(flags)}})
    before = flags.read_bytes()
    with immutable(flags):
        result = check(plan)
    assert result.returncode == 7, result.stdout + result.stderr
    assert (f"  FAIL write: {flags} is immutable (chattr +i): warroom cannot replace it; `chattr -i {flags}` "
            "(as root) lets warroom write") in result.stdout, result.stdout
    assert "Errno" not in result.stdout + result.stderr
    assert flags.read_bytes() == before and sorted(p.name for p in flags.parent.iterdir()) == ["flags.json"]  # nothing written


def test_check_fails_on_an_immutable_folder(tmp_path):
    flags = store_with_flags(tmp_path / "flags")
    plan = write_plan(tmp_path, {"flag_provider": {"provider": "local", "path": str(flags)}})
    with immutable(flags.parent):
        result = check(plan)
    assert result.returncode == 7 and f"  FAIL write: {flags.parent} is immutable (chattr +i): nothing can be created or replaced in it" \
        in result.stdout, result.stdout


def test_check_fails_on_a_folder_mounted_read_only(tmp_path):
    """A real read-only mount (root ignores a folder's mode bits): a bind mount, read-only, in a
    mount namespace of the check's own."""
    flags = store_with_flags(tmp_path / "flags")
    plan = write_plan(tmp_path, {"flag_provider": {"provider": "local", "path": str(flags)}})
    folder = str(flags.parent)
    result = check(plan, require_binary("unshare"), "-m", "sh", "-c",
                   'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"', folder)
    assert result.returncode == 7 and f"  FAIL write: {folder} is on a read-only file system" in result.stdout, result.stdout + result.stderr


def test_check_proves_a_writable_flag_store_and_writes_nothing(tmp_path):
    flags = store_with_flags(tmp_path / "flags")
    plan = write_plan(tmp_path, {"flag_provider": {"provider": "local", "path": str(flags)}})
    before = flags.read_bytes()
    result = check(plan)
    assert result.returncode == 0 and f"  ok   write: {flags.parent} takes new files and flags.json can be replaced" in result.stdout, \
        result.stdout
    assert flags.read_bytes() == before and sorted(p.name for p in flags.parent.iterdir()) == ["flags.json"]


async def test_an_engine_that_cannot_write_its_flag_file_says_why_with_the_whole_path(tmp_path):
    flags = store_with_flags(tmp_path / "a-folder-whose-name-is-long-enough-to-be-cut-on-a-narrow-screen")
    plan = load_plan(write_plan(tmp_path, {"flag_provider": {"provider": "local", "path": str(flags)}}))
    engine = build_engine(plan, clock=VirtualClock())
    await engine.start()
    try:
        # No lock file, no replacement can be created in the folder.
        with immutable(flags.parent), pytest.raises(Exception, match="step up to phase 1 failed"):
            await engine.step_up(ALICE, force=True, reason="go")
    finally:
        await engine.close()
    attempts = [e.message for e in engine.store.entries() if e.kind == "step.attempt"]
    assert attempts and all(m.endswith(f"failed: cannot write the flag file: {flags.parent} is immutable (chattr +i): nothing can "
                                       f"be created or replaced in it; `chattr -i {flags.parent}` (as root) lets warroom write")
                            for m in attempts), attempts
    assert not any("Errno" in m or "PermissionError" in m for m in attempts)


# ------------------------------------------------------------------ HTTP flag APIs: the token's rights


def http_plan(tmp_path: Path, url: str, **provider: object) -> Path:
    return write_plan(tmp_path, {"flag_provider": {"provider": "http", "url": url, "token": "env:WARROOM_TEST_FLAG_TOKEN", **provider}})


def test_check_fails_on_an_http_token_that_may_only_read(tmp_path, flag_service, monkeypatch):
    flag_service.flags["feature"] = {"enabled": False, "rollout_percentage": 0, "user_segments": []}
    flag_service.read_only_tokens.add("READ-ONLY-4d1f")
    monkeypatch.setenv("WARROOM_TEST_FLAG_TOKEN", "READ-ONLY-4d1f")
    result = check(http_plan(tmp_path, flag_service.url, write_check="/flags/{name}"))
    assert result.returncode == 7, result.stdout
    assert ("  FAIL write: OPTIONS /flags/feature allows this token GET, OPTIONS, not POST: its writes would be refused "
            "(check the token: env:WARROOM_TEST_FLAG_TOKEN)") in result.stdout, result.stdout
    assert "READ-ONLY-4d1f" not in result.stdout + result.stderr
    assert [w for w in flag_service.writes if w.value is not None] == []


def test_check_proves_an_http_token_that_may_write_and_says_when_it_cannot_prove_it(tmp_path, flag_service):
    flag_service.flags["feature"] = {"enabled": False, "rollout_percentage": 0, "user_segments": []}
    proven = check(http_plan(tmp_path, flag_service.url, write_check="/flags/{name}"))
    assert proven.returncode == 0 and "  ok   write: the API allows this token to POST every flag (OPTIONS /flags/{name})" \
        in proven.stdout, proven.stdout
    unproven = check(http_plan(tmp_path, flag_service.url))
    assert unproven.returncode == 0 and ("  WARN write: whether the token may POST cannot be proven without writing a flag: "
                                         "set flag_provider.write_check") in unproven.stdout, unproven.stdout
    assert flag_service.writes == []


def test_check_asks_unleash_what_the_token_may_do(tmp_path, unleash, unleash_admin, unleash_token, unleash_feature, monkeypatch):
    plan = write_plan(tmp_path, {"flag_provider": {"provider": "unleash", "url": unleash, "token": unleash_token},
                                 "sources": {"sim": {"type": "simulator", "seed": 1, "noise": 0}},
                                 "phases": [{"name": "Canary", "flags": {unleash_feature: 5}, "hold": "0s"}]})
    admin = check(plan)
    assert admin.returncode == 0 and "  ok   write: the Admin API says this token is an admin's: it may change every feature" \
        in admin.stdout, admin.stdout
    made = unleash_admin.post(unleash.rstrip("/") + "/api/admin/api-tokens", json={
        "tokenName": "warroom-reader", "type": "client", "environment": "production", "projects": ["*"]})
    made.raise_for_status()
    monkeypatch.setenv("WARROOM_TEST_UNLEASH_TOKEN", made.json()["secret"])
    client = check(plan)
    assert client.returncode == 7 and "  FAIL write: the Admin API refuses this token (HTTP 40" in client.stdout, client.stdout
    assert made.json()["secret"] not in client.stdout + client.stderr
