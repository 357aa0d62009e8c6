"""A published stakeholder update, archived as one self-contained HTML file (inline CSS, no script, no asset).

What was told, to whom it was promised and who approved it, kept where the launch's other
records are: beside the state file (or the plan's `updates.archive`). Rendered with Jinja2's
autoescape, so an update's text — quoting plan names, reasons and server errors — is text.
"""

from __future__ import annotations

import time
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from warroom.core.identity import person
from warroom.core.secrets import redact
from warroom.core.text import terminal_safe
from warroom.core.updates import UpdateReason
from warroom.store.base import StoredUpdate

_ENV = Environment(loader=PackageLoader("warroom.outbound", "templates"), autoescape=True, undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True)


def _clean(text: str) -> str:
    return redact(terminal_safe(text, keep_newlines=True))


def render(update: StoredUpdate, *, rollout: str, environment: str, owner: str) -> str:
    return _ENV.get_template("update.html.j2").render(
        rollout=_clean(rollout), environment=environment.upper(), owner=_clean(owner), approved_by=_clean(person(update.by)),
        published=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(update.published or update.created)),
        due=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(update.due)), reason=UpdateReason(update.reason).meaning,
        lines=_clean(update.text).splitlines())


def write(folder: Path, update: StoredUpdate, *, rollout: str, environment: str, owner: str) -> Path:
    """Write the update's file (named by its time and number, so the folder lists in order); its path."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(update.published or update.created))
    path = folder / f"update-{stamp}-{update.id}.html"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render(update, rollout=rollout, environment=environment, owner=owner), encoding="utf-8")
    tmp.replace(path)
    return path
