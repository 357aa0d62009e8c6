"""The generic `http` provider: a team's own REST flag API.

The default shape is the seeds' API: `POST {url}/flags/{name}` with
`{"enabled": …, "rollout_percentage": …, "user_segments": […]}` and `GET` on the same
path to read back, bearer token. Paths, method, field names, an envelope around the
answer and the percentage scale are configurable, which covers the usual variants.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import Field

from warroom.core.flagstate import FlagState
from warroom.flags.base import Capabilities, FlagError, FlagProvider, ProviderConfig
from warroom.flags.httpapi import JsonApi
from warroom.plan.fields import Headers, PositiveDuration, SecretRef, Strict, TLSOptions


class HttpFields(Strict):
    """Body field names; `segments: null` for an API without segments."""

    enabled: str = "enabled"
    rollout: str = "rollout_percentage"
    segments: str | None = "user_segments"


class HttpConfig(ProviderConfig):
    provider: Literal["http"]
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    token: SecretRef | None = None
    auth_header: str = "Authorization"
    # "" sends the bare token (APIs that want `Authorization: <token>` or `X-Api-Key: <token>`).
    auth_scheme: str = "Bearer"
    # A credential header's value (X-Api-Key, …) must be a secret reference, resolved on first use.
    headers: Headers = {}
    read_path: str = "/flags/{name}"
    write_path: str = "/flags/{name}"
    write_method: Literal["POST", "PUT", "PATCH"] = "POST"
    fields: HttpFields = HttpFields()
    # Dotted key the flag sits under in the read answer, e.g. `data` for {"data": {…}}.
    envelope: str | None = None
    # `fraction`: the API speaks 0..1 instead of 0..100.
    rollout_scale: Literal["percent", "fraction"] = "percent"
    timeout: PositiveDuration = 5.0
    tls: TLSOptions = TLSOptions()


class HttpFlagProvider(FlagProvider):
    kind = "http"
    capabilities = Capabilities(rollout_step=0, segments="fields.segments")  # segments only with a segments field
    Config = HttpConfig

    def __init__(self, config: HttpConfig, base_dir: Any):
        super().__init__(config, base_dir)
        self.cfg = config
        self.api = JsonApi(
            config.url,
            token_ref=config.token,
            auth_header=config.auth_header,
            auth_scheme=config.auth_scheme,
            headers=config.headers,
            timeout=config.timeout,
            tls=config.tls,
        )
        self.scale = 100.0 if config.rollout_scale == "fraction" else 1.0

    def describe(self) -> str:
        return f"http flag API {self.cfg.url}"

    def _path(self, template: str, name: str) -> str:
        return template.format(name=quote(name, safe=""))

    async def read(self, name: str) -> FlagState | None:
        body = await self.api.request("GET", self._path(self.cfg.read_path, name), missing_ok=True)
        if body is None:
            return None
        for key in (self.cfg.envelope or "").split("."):
            if key:
                body = body.get(key) if isinstance(body, dict) else None
        fields = self.cfg.fields
        if not isinstance(body, dict) or not isinstance(body.get(fields.enabled), bool):
            raise FlagError(f"read {name}: answer has no boolean `{fields.enabled}` field")
        try:
            rollout = float(body.get(fields.rollout, 100.0 / self.scale)) * self.scale
            segments = tuple(str(s) for s in body.get(fields.segments) or ()) if fields.segments else ()
        except (TypeError, ValueError):
            raise FlagError(f"read {name}: `{fields.rollout}` or `{fields.segments}` is malformed") from None
        return FlagState(body[fields.enabled], rollout, segments)

    async def write(self, name: str, state: FlagState) -> None:
        fields = self.cfg.fields
        body: dict[str, Any] = {fields.enabled: state.enabled, fields.rollout: state.rollout / self.scale}
        if fields.segments:
            body[fields.segments] = list(state.segments)
        elif state.segments:
            raise FlagError(f"this flag API has no segments field; cannot target {','.join(state.segments)}")
        await self.api.request(self.cfg.write_method, self._path(self.cfg.write_path, name), body)

    async def close(self) -> None:
        await self.api.close()
