"""The built-in `local` flag store: one JSON file, replaced atomically and fsynced.

The file uses the seeds' flag shape so a team can read it at a glance:
{"flags": {"realtime-features": {"enabled": true, "rollout_percentage": 25, "user_segments": []}}}
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from .base import FlagError, FlagProvider, FlagState, ProviderConfig


class LocalConfig(ProviderConfig):
    provider: Literal["local"]
    path: str = "flags.json"


class LocalFlagProvider(FlagProvider):
    kind = "local"
    Config = LocalConfig

    def __init__(self, config: LocalConfig, base_dir: Path):
        super().__init__(config, base_dir)
        path = Path(config.path).expanduser()
        self.path = path if path.is_absolute() else Path(base_dir) / path

    def describe(self) -> str:
        return f"local file {self.path}"

    @contextmanager
    def _locked(self):
        # Several consoles and CLI verbs may write at once; serialise read-modify-write.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(str(self.path) + ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"flags": {}}
        except (OSError, ValueError) as exc:
            raise FlagError(f"{self.path}: unreadable flag store ({type(exc).__name__})") from None
        if not isinstance(data, dict) or not isinstance(data.get("flags"), dict):
            raise FlagError(f"{self.path}: expected {{\"flags\": {{…}}}}")
        return data

    def _read_sync(self, name: str) -> FlagState | None:
        entry = self._load()["flags"].get(name)
        if entry is None:
            return None
        try:
            return FlagState(
                bool(entry["enabled"]),
                float(entry.get("rollout_percentage", 100.0)),
                tuple(entry.get("user_segments", ())),
            )
        except (KeyError, TypeError, ValueError):
            raise FlagError(f"{self.path}: flag {name} is malformed") from None

    def _write_sync(self, name: str, state: FlagState) -> None:
        with self._locked():
            data = self._load()
            entry = dict(data["flags"].get(name) or {})
            entry.update(enabled=state.enabled, rollout_percentage=state.rollout, user_segments=list(state.segments))
            data["flags"][name] = entry
            fd, tmp = tempfile.mkstemp(prefix=".flags-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(data, fh, indent=2, sort_keys=True)
                    fh.write("\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except OSError as exc:
                Path(tmp).unlink(missing_ok=True)
                raise FlagError(f"{self.path}: write failed ({exc.strerror or type(exc).__name__})") from None
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    async def read(self, name: str) -> FlagState | None:
        return self._read_sync(name)

    async def write(self, name: str, state: FlagState) -> None:
        # fsync can take a while on a busy disk; keep the event loop free.
        await asyncio.to_thread(self._write_sync, name, state)
