"""Flag providers and sources by name, registered as entry points, loaded only when a plan names them.

warroom's own register in its pyproject.toml like anyone else's; another package adds one
with an entry point in the group `warroom.flag_providers` or `warroom.sources`, naming a
class with a `Config` pydantic model (a flag provider also declares `capabilities`).
Only the one a plan names is imported (a plan using `local` never loads an HTTP client),
and a missing or broken one is a message naming it, never a traceback.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol

from pydantic import BaseModel

from warroom.core.flagstate import FlagState
from warroom.plan.problems import suggestion

FLAG_PROVIDERS = "warroom.flag_providers"
SOURCES = "warroom.sources"
_WHAT = {FLAG_PROVIDERS: "flag provider", SOURCES: "source type"}


class PluginError(Exception):
    """A plugin that is not there or cannot be loaded; the message names it and says what to do."""


class Capabilities(Protocol):
    """What a flag provider declares it can set (flags/base.Capabilities)."""

    def refusal(self, state: FlagState, config: Any) -> str | None: ...


@dataclass(frozen=True)
class Plugin:
    group: str
    name: str
    target: Any  # the class the entry point names
    config: type[BaseModel]  # its `Config`: the keys a plan gives it

    def validate(self, keys: dict[str, Any], context: dict[str, Any] | None = None) -> BaseModel:
        """The plugin's keys as its own model; a pydantic ValidationError says what is wrong."""
        return self.config.model_validate(keys, context=context)

    @property
    def capabilities(self) -> Capabilities:
        capabilities: Capabilities = self.target.capabilities
        return capabilities


@functools.cache
def _registered(group: str) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep)  # the first on sys.path wins, as for any import
    return found


def names(group: str) -> list[str]:
    return sorted(_registered(group))


def forget() -> None:
    """Read the entry points again (after a distribution was installed into this process's path)."""
    _registered.cache_clear()
    load.cache_clear()


@functools.cache
def load(group: str, name: str) -> Plugin:
    """The plugin `name` of `group`, imported now; PluginError when it is not registered or is broken."""
    what = _WHAT[group]
    registered = _registered(group)
    ep = registered.get(name)
    if ep is None:
        near = suggestion(name, list(registered))
        hint = f"did you mean {near}? " if near else ""
        raise PluginError(f"unknown {what} {name!r} ({hint}known: {', '.join(sorted(registered)) or 'none'}; "
                          f"another package adds one with an entry point in the group {group})")
    origin = f"{ep.value}" + (f" from {ep.dist.name} {ep.dist.version}" if ep.dist is not None else "")
    try:
        target = ep.load()
    except Exception as exc:  # an import error, or any error the plugin's module raises as it loads
        raise PluginError(f"{what} {name!r} ({origin}) cannot be loaded: {type(exc).__name__}: {exc}") from None
    config = getattr(target, "Config", None)
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        raise PluginError(f"{what} {name!r} ({origin}) is broken: it has no `Config` pydantic model for its keys")
    if group == FLAG_PROVIDERS and not callable(getattr(getattr(target, "capabilities", None), "refusal", None)):
        raise PluginError(f"{what} {name!r} ({origin}) is broken: it declares no `capabilities` (what it can set)")
    return Plugin(group, name, target, config)
