"""Every secret a plan uses, found by type: a field validated as a secret reference, or a credential header.

Found by type, so a new provider's or step's secret field is included without a list to
keep up to date; a flag provider's or another package's source's keys are read through
their own models, so their tokens are found too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, get_args

from pydantic import AfterValidator, BaseModel
from pydantic.fields import FieldInfo

from warroom.core import secrets
from warroom.plan import plugins
from warroom.plan.fields import SECRET_HEADERS_VALIDATOR, SECRET_VALIDATOR
from warroom.plan.sources import PluginSourceConfig

if TYPE_CHECKING:
    from warroom.plan.model import Plan


def secret_references(plan: Plan) -> list[tuple[str, str]]:
    """(where, reference) for every secret the plan uses: source credentials and credential headers,
    the flag provider's token, runbook webhooks and headers, notify URLs."""
    out = _secret_refs(plan, "")
    provider = plugins.load(plugins.FLAG_PROVIDERS, plan.flag_provider.provider)
    out += _secret_refs(provider.validate(plan.flag_provider.keys()), "flag_provider")
    for name, source in plan.sources.items():
        if isinstance(source, PluginSourceConfig):
            config = plugins.load(plugins.SOURCES, source.type).validate({**(source.model_extra or {}), "type": source.type})
            out += _secret_refs(config, f"sources.{name}")
    return out


def _after_validators(info: FieldInfo) -> set[Any]:
    """The AfterValidator functions on a model field, also those inside Optional[Annotated[…]]."""
    found = {m.func for m in info.metadata if isinstance(m, AfterValidator)}
    stack = [info.annotation]
    while stack:
        t = stack.pop()
        found |= {m.func for m in getattr(t, "__metadata__", ()) if isinstance(m, AfterValidator)}
        stack.extend(a for a in get_args(t) if not isinstance(a, AfterValidator))
    return found


def _secret_refs(value: Any, where: str) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [ref for k, v in value.items() for ref in _secret_refs(v, f"{where}.{k}")]
    if isinstance(value, (list, tuple)):
        return [ref for i, v in enumerate(value) for ref in _secret_refs(v, f"{where}[{i}]")]
    if not isinstance(value, BaseModel):
        return []
    out: list[tuple[str, str]] = []
    for name, info in type(value).model_fields.items():
        field, path = getattr(value, name), f"{where}.{info.alias or name}".lstrip(".")
        validators = _after_validators(info)
        if SECRET_VALIDATOR in validators and isinstance(field, str):
            out.append((path, field))
        elif SECRET_HEADERS_VALIDATOR in validators and isinstance(field, dict):  # a header value is a secret when it is a reference
            out += [(f"{path}.{k}", v) for k, v in field.items() if secrets.is_reference(v)]
        else:
            out += _secret_refs(field, path)
    return out
