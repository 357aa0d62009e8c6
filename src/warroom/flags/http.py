"""The generic `http` provider: a team's own REST flag API.

The default shape is the seeds' API: `POST {url}/flags/{name}` with
`{"enabled": …, "rollout_percentage": …, "user_segments": […]}` and `GET` on the same
path to read back, bearer token. Paths, method, field names, an envelope around the
answer and the percentage scale are configurable, which covers the usual variants.

Every write carries the writing engine's lease epoch (`X-Warroom-Epoch`): an API that
remembers the highest epoch it was written with can refuse a write of a lower one, the
late write of an engine that was frozen after its last lease check and taken over since.
`warroom check` proves the token may write where the API says so: an `OPTIONS` on
`write_check` whose `Allow` header lists the write method.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import Field

from warroom.core.flagstate import FlagState
from warroom.flags.base import Capabilities, FlagError, FlagProvider, Proof, ProviderConfig, Writable
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
    # A path answering OPTIONS with the methods this token may use (`Allow`); `{name}` is a flag.
    # Without it `check` cannot prove the token may write without writing a flag.
    write_check: str | None = None


EPOCH_HEADER = "X-Warroom-Epoch"


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
        await self.write_fenced(name, state, None)

    async def write_fenced(self, name: str, state: FlagState, epoch: int | None) -> None:
        fields = self.cfg.fields
        body: dict[str, Any] = {fields.enabled: state.enabled, fields.rollout: state.rollout / self.scale}
        if fields.segments:
            body[fields.segments] = list(state.segments)
        elif state.segments:
            raise FlagError(f"this flag API has no segments field; cannot target {','.join(state.segments)}")
        fence = {EPOCH_HEADER: str(epoch)} if epoch is not None else None
        await self.api.request(self.cfg.write_method, self._path(self.cfg.write_path, name), body, headers=fence)

    async def writable(self, names: list[str]) -> Writable:
        method = self.cfg.write_method
        if self.cfg.write_check is None:
            return Writable(Proof.UNPROVEN, f"whether the token may {method} cannot be proven without writing a flag: set "
                                            "flag_provider.write_check to a path that answers OPTIONS with the methods it allows")
        for name in names:
            path = self._path(self.cfg.write_check, name)
            try:
                allowed = await self.api.allowed(path)
            except FlagError as exc:
                return Writable(Proof.NOT_WRITABLE, f"OPTIONS {path}: {exc.reason}")
            if method not in allowed:
                return Writable(Proof.NOT_WRITABLE, f"OPTIONS {path} allows this token {', '.join(sorted(allowed)) or 'nothing'}, "
                                                    f"not {method}: its writes would be refused (check the token: {self.cfg.token})")
        return Writable(Proof.WRITABLE, f"the API allows this token to {method} every flag (OPTIONS {self.cfg.write_check})")

    async def close(self) -> None:
        await self.api.close()
