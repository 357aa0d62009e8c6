"""Where numbers come from and where exposure is changed: source configs and the flag provider's.

The built-in sources' keys (prometheus, simulator) are plan language, defined here. A
source or flag provider from another package (an entry point, see plugins.py) brings its
own config model; the plan keeps its keys as written and the loader checks them with it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Discriminator, Field, Tag, model_validator

from warroom.plan.faults import Fault
from warroom.plan.fields import Duration, Headers, PositiveDuration, SecretRef, Strict, TLSOptions
from warroom.plan.urls import refuse_password


class BasicAuth(Strict):
    username: str
    password: SecretRef


class SourceAuth(Strict):
    bearer: SecretRef | None = None
    basic: BasicAuth | None = None

    @model_validator(mode="after")
    def _one(self) -> SourceAuth:
        if (self.bearer is None) == (self.basic is None):
            raise ValueError("give exactly one of bearer or basic")
        return self


_URL_CREDENTIALS = ("take it out and give the credentials in `auth:` as secret references: "
                    "auth: {basic: {username: NAME, password: env:PROM_PASSWORD}} or auth: {bearer: env:PROM_TOKEN}")


class PrometheusSourceConfig(Strict):
    type: Literal["prometheus"]
    url: Annotated[str, BeforeValidator(refuse_password(_URL_CREDENTIALS)), Field(pattern=r"^https?://\S+$")]
    auth: SourceAuth | None = None
    headers: Headers = {}
    timeout: PositiveDuration = 5.0
    tls: TLSOptions = Field(default_factory=TLSOptions)
    backfill: Duration = 300.0


class SimulatorSourceConfig(Strict):
    type: Literal["simulator"]
    seed: int = 7
    flag: str | None = None  # the flag whose exposure drives the model; default: the plan's first
    faults: list[Fault] = []
    faults_file: str | None = None
    noise: Annotated[float, Field(ge=0, le=1)] = 0.05


class PluginSourceConfig(Strict):
    """A source from another package (entry point group `warroom.sources`): its keys as the plan wrote
    them, checked by the source's own `Config` model when the plan loads (plugins.py, load.py)."""

    model_config = ConfigDict(extra="allow")
    type: str


BUILTIN_SOURCES = ("prometheus", "simulator")


def _source_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in BUILTIN_SOURCES else "plugin"


SourceConfig = Annotated[
    Annotated[PrometheusSourceConfig, Tag("prometheus")] | Annotated[SimulatorSourceConfig, Tag("simulator")]
    | Annotated[PluginSourceConfig, Tag("plugin")],
    Discriminator(_source_kind),
]


class FlagProviderConfig(Strict):
    """The provider's name; its own keys are checked by the provider's model (entry point group `warroom.flag_providers`)."""

    model_config = ConfigDict(extra="allow")
    provider: str

    def keys(self) -> dict[str, Any]:
        """The provider's keys as the plan wrote them, `provider` included."""
        return {**(self.model_extra or {}), "provider": self.provider}


def _mapping(value: Any) -> Any:
    if not isinstance(value, (dict, FlagProviderConfig)):
        raise ValueError("expected a mapping: {provider: local, …}")
    return value


FlagProvider = Annotated[FlagProviderConfig, BeforeValidator(_mapping)]
