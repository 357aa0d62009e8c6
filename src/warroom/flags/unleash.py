"""The `unleash` provider: a feature's state in one environment, via the Admin API.

warroom owns one strategy per feature and environment: the first active
`flexibleRollout` (created when missing). Its `parameters.rollout` (a string, whole
percent) is the exposure; segments become an `IN` constraint on one context field.
Other strategies and other constraints are left as they are. Enabling happens after
the percentage is set, so a feature is never briefly on for everyone.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import Field

from warroom.core.flagstate import FlagState
from warroom.flags.base import Capabilities, FlagError, FlagProvider, Proof, ProviderConfig, Writable
from warroom.flags.httpapi import JsonApi
from warroom.plan.fields import PositiveDuration, SecretRef, TLSOptions

STRATEGY = "flexibleRollout"
# What warroom's writes need in the project and environment: on/off, and its rollout strategy.
NEEDED = ("UPDATE_FEATURE_ENVIRONMENT", "CREATE_FEATURE_STRATEGY", "UPDATE_FEATURE_STRATEGY")


class UnleashConfig(ProviderConfig):
    provider: Literal["unleash"]
    # The server's base URL, e.g. https://unleash.example.com (without /api).
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    # An admin API token (`*:*.…`) or a personal access token.
    token: SecretRef
    project: str = "default"
    environment: str = "production"
    # The Unleash context field that segments are matched against.
    segment_field: str = "segment"
    stickiness: str = "default"
    timeout: PositiveDuration = 5.0
    tls: TLSOptions = TLSOptions()


def _owned(strategies: list[dict[str, Any]]) -> dict[str, Any] | None:
    active = [s for s in strategies if s.get("name") == STRATEGY and not s.get("disabled")]
    return min(active, key=lambda s: s.get("sortOrder") or 0) if active else None


class UnleashFlagProvider(FlagProvider):
    kind = "unleash"
    capabilities = Capabilities(rollout_step=1, segments=True)  # SDKs bucket users by whole percents
    missing_flag_problem = "no such feature in Unleash: create it there first (warroom only changes existing features)"
    Config = UnleashConfig

    def __init__(self, config: UnleashConfig, base_dir: Any):
        super().__init__(config, base_dir)
        self.cfg = config
        # Unleash wants the bare token in Authorization, no scheme.
        self.api = JsonApi(config.url, token_ref=config.token, auth_scheme="", timeout=config.timeout, tls=config.tls)

    def describe(self) -> str:
        return f"Unleash {self.cfg.url} project {self.cfg.project}, environment {self.cfg.environment}"

    def _env_path(self, name: str) -> str:
        return (f"/api/admin/projects/{quote(self.cfg.project, safe='')}/features/{quote(name, safe='')}"
                f"/environments/{quote(self.cfg.environment, safe='')}")

    async def _environment(self, name: str) -> dict[str, Any] | None:
        body = await self.api.request("GET", self._env_path(name), missing_ok=True)
        if body is not None and not (isinstance(body, dict) and isinstance(body.get("enabled"), bool)):
            raise FlagError(f"read {name}: unexpected answer from Unleash (no `enabled`)")
        return body

    def _segments(self, strategy: dict[str, Any]) -> tuple[str, ...]:
        for c in strategy.get("constraints") or ():
            if c.get("contextName") == self.cfg.segment_field and c.get("operator") == "IN":
                return tuple(c.get("values") or ())
        return ()

    def _constraints(self, strategy: dict[str, Any] | None, segments: tuple[str, ...]) -> list[dict[str, Any]]:
        """The strategy's constraints with ours replaced: others belong to someone else."""
        others = [c for c in (strategy or {}).get("constraints") or ()
                  if not (c.get("contextName") == self.cfg.segment_field and c.get("operator") == "IN")]
        ours = [{"contextName": self.cfg.segment_field, "operator": "IN", "values": list(segments)}] if segments else []
        return others + ours

    async def read(self, name: str) -> FlagState | None:
        env = await self._environment(name)
        if env is None:
            return None
        strategy = _owned(env.get("strategies") or [])
        if strategy is None:
            # Without a rollout strategy only the legacy `default` strategy exposes anyone.
            everyone = any(s.get("name") == "default" and not s.get("disabled") for s in env.get("strategies") or ())
            return FlagState(env["enabled"], 100.0 if everyone else 0.0)
        raw = (strategy.get("parameters") or {}).get("rollout", "100")
        try:
            rollout = float(raw)
        except (TypeError, ValueError):
            raise FlagError(f"read {name}: flexibleRollout has rollout {str(raw)[:20]!r}, not a number") from None
        return FlagState(env["enabled"], rollout, self._segments(strategy))

    async def write(self, name: str, state: FlagState) -> None:
        env = await self._environment(name)
        if env is None:
            raise FlagError(f"feature {name} does not exist in Unleash project {self.cfg.project} "
                            f"(environment {self.cfg.environment}); create it there first")
        path = self._env_path(name)
        if state.enabled:
            if state.rollout != int(state.rollout):
                # The SDKs bucket users into whole percents; 0.5 % would expose nobody or 1 %.
                raise FlagError(f"Unleash rollouts are whole percents; {state.rollout:g}% cannot be set")
            rollout = str(int(state.rollout))
            strategy = _owned(env.get("strategies") or [])
            constraints = self._constraints(strategy, state.segments)
            if strategy is None:
                await self.api.request("POST", f"{path}/strategies", {
                    "name": STRATEGY,
                    "parameters": {"rollout": rollout, "stickiness": self.cfg.stickiness, "groupId": name},
                    "constraints": constraints,
                })
            else:
                patch: list[dict[str, Any]] = []
                if (strategy.get("parameters") or {}).get("rollout") != rollout:
                    patch.append({"op": "replace", "path": "/parameters/rollout", "value": rollout})
                if (strategy.get("constraints") or []) != constraints:
                    patch.append({"op": "replace", "path": "/constraints", "value": constraints})
                if patch:
                    await self.api.request("PATCH", f"{path}/strategies/{quote(strategy['id'], safe='')}", patch)
        if state.enabled != env["enabled"]:
            await self.api.request("POST", f"{path}/{'on' if state.enabled else 'off'}")

    async def writable(self, names: list[str]) -> Writable:
        """What the Admin API says of this token (`GET /api/admin/user`: the permissions of the token or
        of the person whose access token it is), against what warroom's writes need."""
        try:
            me = await self.api.request("GET", "/api/admin/user")
        except FlagError as exc:
            return Writable(Proof.NOT_WRITABLE, f"the Admin API refuses this token ({exc.reason}): warroom needs an admin "
                                                "API token or a personal access token of someone who may change features")
        granted = [p for p in (me or {}).get("permissions") or () if isinstance(p, dict)]
        if any(p.get("permission") == "ADMIN" for p in granted):
            return Writable(Proof.WRITABLE, "the Admin API says this token is an admin's: it may change every feature")
        cfg = self.cfg

        def has(permission: str) -> bool:
            return any(p.get("permission") == permission and p.get("project") in (None, cfg.project, "*")
                       and p.get("environment") in (None, cfg.environment) for p in granted)

        missing = [p for p in NEEDED if not has(p)]
        if missing:
            return Writable(Proof.NOT_WRITABLE, f"the Admin API says this token lacks {', '.join(missing)} in project "
                                                f"{cfg.project}, environment {cfg.environment}: its writes would be refused")
        return Writable(Proof.WRITABLE, f"the Admin API says this token may change features in project {cfg.project}, "
                                        f"environment {cfg.environment}")

    async def close(self) -> None:
        await self.api.close()
