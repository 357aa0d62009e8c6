"""The `local` flag store: a JSON file replaced atomically, every write read back from the file."""

from __future__ import annotations

import json
import os

from warroom.flags.base import FlagState
from warroom.flags.registry import make_provider
from warroom.plan import FlagProviderConfig


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
