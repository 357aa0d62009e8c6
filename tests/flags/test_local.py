"""The `local` flag store: a JSON file replaced atomically, every write read back from the file."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from warroom.core.flagstate import FlagState
from warroom.flags.base import FlagError
from warroom.flags.registry import make_provider
from warroom.plan.load import parse_plan
from warroom.plan.sources import FlagProviderConfig
from warroom.plan.yamlfile import PlanError


async def test_a_read_back_reads_the_file_not_the_tick_cache(tmp_path):
    provider = make_provider(FlagProviderConfig(provider="local", path="flags.json"), tmp_path)
    path = tmp_path / "flags.json"
    await provider.write_verified("f", FlagState(True, 25.0))
    assert (await provider.read_many(["f"]))["f"] == FlagState(True, 25.0)  # now cached
    # The same inode, size and mtime with other content: the tick cache cannot tell …
    st = path.stat()
    text = path.read_text().replace('"rollout_percentage": 25.0', '"rollout_percentage": 75.0')
    with open(path, "r+") as fh:
        fh.write(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_ino == st.st_ino and path.stat().st_size == st.st_size
    # … but a read-back goes to the file.
    assert await provider.read("f") == FlagState(True, 75.0)


async def test_writes_replace_the_file_whole_and_keep_other_keys(tmp_path):
    provider = make_provider(FlagProviderConfig(provider="local", path="state/flags.json"), tmp_path)
    path = tmp_path / "state" / "flags.json"
    await provider.write_verified("f", FlagState(True, 5.0, ("beta",)))
    data = json.loads(path.read_text())
    data["flags"]["f"]["fallback_enabled"] = True  # a key of the seed's flag shape we do not manage
    path.write_text(json.dumps(data))
    inode = path.stat().st_ino
    await provider.write_verified("f", FlagState(False, 0.0))
    assert path.stat().st_ino != inode  # replaced by rename, never rewritten in place
    assert json.loads(path.read_text())["flags"]["f"] == {
        "enabled": False, "rollout_percentage": 0.0, "user_segments": [], "fallback_enabled": True}
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".flags.json-")]  # no temp file left


PASSWD = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"


@pytest.mark.parametrize("provider", ["local", "flagd"])
@pytest.mark.parametrize("content", [PASSWD, '{"name": "some-app", "version": "1.0.0"}'])
async def test_a_file_that_is_not_a_flag_file_is_refused_and_nothing_is_created_beside_it(tmp_path, provider, content):
    # `path: /etc/passwd` by a slip of the hand: a copy stands in for it (the test runs as root).
    target = tmp_path / "etc" / "passwd"
    target.parent.mkdir()
    target.write_text(content)
    p = make_provider(FlagProviderConfig(provider=provider, path=str(target)), tmp_path)
    with pytest.raises(FlagError) as info:
        await p.write_verified("f", FlagState(True, 5.0))
    assert info.value.reason.startswith(f"{target}: ")
    assert ("so warroom will not write it nor put a lock beside it; set flag_provider.path to the flag file "
            "(warroom creates it if it does not exist)") in info.value.reason
    assert target.read_text() == content
    assert sorted(p.name for p in target.parent.iterdir()) == ["passwd"]  # no passwd.lock, no temp file


async def test_a_directory_is_refused_at_write_time(tmp_path):
    p = make_provider(FlagProviderConfig(provider="local", path=str(tmp_path)), tmp_path)
    with pytest.raises(FlagError, match="is a directory, not a flag file; set flag_provider.path to the flag file"):
        await p.write_verified("f", FlagState(False, 0.0))
    assert not (tmp_path.parent / f"{tmp_path.name}.lock").exists()


@pytest.mark.parametrize(("path", "says"), [
    ("''", "flag_provider.path: the flag file's path is empty; give a file, e.g. .warroom/flags.json"),
    ("'state/'", "flag_provider.path: 'state/' names a directory; give the flag file in it, e.g. state/flags.json"),
    (".", "flag_provider.path: '.' names a directory; give the flag file in it, e.g. ./flags.json"),
])
@pytest.mark.parametrize("provider", ["local", "flagd"])
def test_an_empty_or_directory_path_is_a_plan_error_naming_the_field(tmp_path, provider, path, says):
    text = textwrap.dedent(f"""\
        rollout: {{name: x, environment: staging}}
        sources: {{sim: {{type: simulator}}}}
        flag_provider: {{provider: {provider}, path: {path}}}
        phases: [{{name: Beta, flags: {{f: 5}}}}]
        """)
    with pytest.raises(PlanError) as info:
        parse_plan(text, "plan.yaml", tmp_path)
    assert "plan.yaml:3:" in str(info.value) and says in str(info.value)
