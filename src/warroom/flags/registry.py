"""Flag providers by the plan's `provider:` name, found by entry point (group `warroom.flag_providers`).

warroom's own (local, http, unleash, flagd) register in its pyproject.toml; another package
adds one with its own entry point, without a line changed here (see plan/plugins.py).
"""

from __future__ import annotations

from pathlib import Path

from warroom.flags.base import FlagProvider, ProviderConfig
from warroom.plan import plugins
from warroom.plan.sources import FlagProviderConfig


class UnknownProvider(plugins.PluginError):
    """A provider the plan names that is not registered, or cannot be loaded."""


def provider_names() -> list[str]:
    return plugins.names(plugins.FLAG_PROVIDERS)


def provider_class(name: str) -> type[FlagProvider]:
    try:
        target = plugins.load(plugins.FLAG_PROVIDERS, name).target
    except plugins.PluginError as exc:
        raise UnknownProvider(str(exc)) from None
    if not (isinstance(target, type) and issubclass(target, FlagProvider)):
        raise UnknownProvider(f"flag provider {name!r} is broken: its entry point names no FlagProvider class")
    return target


def validate_config(config: FlagProviderConfig) -> ProviderConfig:
    """The plan's flag_provider mapping, validated by the provider's own model."""
    return provider_class(config.provider).Config.model_validate(config.keys())


def make_provider(config: FlagProviderConfig, base_dir: Path | str) -> FlagProvider:
    cls = provider_class(config.provider)
    return cls(validate_config(config), base_dir)
