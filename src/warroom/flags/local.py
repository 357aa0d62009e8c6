"""The built-in `local` flag store: one JSON file, replaced atomically and fsynced.

The file uses the seeds' flag shape so a team can read it at a glance:
{"flags": {"realtime-features": {"enabled": true, "rollout_percentage": 25, "user_segments": []}}}
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from . import files
from .base import FlagError, FlagProvider, FlagState, ProviderConfig


class LocalConfig(ProviderConfig):
    provider: Literal["local"]
    path: str = "flags.json"


class LocalFlagProvider(FlagProvider):
    kind = "local"
    Config = LocalConfig

    def __init__(self, config: LocalConfig, base_dir: Path):
        super().__init__(config, base_dir)
        self.path = files.resolve(config.path, base_dir)

    def describe(self) -> str:
        return f"local file {self.path}"

    def _load(self, fresh: bool = False) -> dict[str, Any]:
        data = files.load_json(self.path, "flag store", fresh=fresh)
        if data is None:
            return {"flags": {}}
        if not isinstance(data, dict) or not isinstance(data.get("flags"), dict):
            raise FlagError(f"{self.path}: expected {{\"flags\": {{…}}}}")
        return data

    def _state(self, name: str, entry: Any) -> FlagState | None:
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
        with files.locked(self.path):
            data = self._load(fresh=True)
            entry = dict(data["flags"].get(name) or {})
            entry.update(enabled=state.enabled, rollout_percentage=state.rollout, user_segments=list(state.segments))
            data["flags"][name] = entry
            files.replace_json(self.path, data)

    async def read(self, name: str) -> FlagState | None:
        return self._state(name, self._load()["flags"].get(name))

    async def read_many(self, names: list[str]) -> dict[str, FlagState | None | FlagError]:
        try:
            flags = self._load()["flags"]  # one stat (and at most one parse) for every flag
        except FlagError as exc:
            return {name: exc for name in names}
        return {name: files.state_or_error(self._state, name, flags.get(name)) for name in names}

    async def write(self, name: str, state: FlagState) -> None:
        # fsync can take a while on a busy disk; keep the event loop free.
        await asyncio.to_thread(self._write_sync, name, state)
