"""Flag providers by name. Adding a provider is one module and one line here."""

from __future__ import annotations

import importlib
from pathlib import Path

from warroom.flags.base import FlagProvider, ProviderConfig

# name -> "module:Class"; imported lazily so a plan using `local` never loads HTTP clients.
PROVIDERS: dict[str, str] = {
    "local": "warroom.flags.local:LocalFlagProvider",
    "http": "warroom.flags.http:HttpFlagProvider",
    "unleash": "warroom.flags.unleash:UnleashFlagProvider",
    "flagd": "warroom.flags.flagd:FlagdFlagProvider",
}


class UnknownProvider(Exception):
    pass


def provider_class(name: str) -> type[FlagProvider]:
    try:
        target = PROVIDERS[name]
    except KeyError:
        raise UnknownProvider(f"unknown flag provider {name!r} (known: {', '.join(sorted(PROVIDERS))})") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def validate_config(config) -> ProviderConfig:
    """Validate the plan's flag_provider mapping with the provider's own model."""
    data = dict(config.model_extra or {})
    data["provider"] = config.provider
    return provider_class(config.provider).Config.model_validate(data)


def make_provider(config, base_dir: Path) -> FlagProvider:
    cls = provider_class(config.provider)
    return cls(validate_config(config), base_dir)
