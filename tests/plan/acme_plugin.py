"""A third party's warroom plugins, as another package would ship them: built into a real wheel by the tests."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

# The package: a flag provider keeping flags in a JSON file of [enabled, rollout] pairs, and a
# source answering one constant. It imports warroom's interfaces only, as any plugin would.
PACKAGE = '''
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from warroom.core.flagstate import FlagState
from warroom.flags.base import Capabilities, FlagProvider, ProviderConfig
from warroom.plan.fields import Strict
from warroom.sources.base import Reading, Source


class NotesConfig(ProviderConfig):
    provider: Literal["acme-notes"]
    path: str
    timeout: float = 1.0


class NotesFlags(FlagProvider):
    kind = "acme-notes"
    Config = NotesConfig
    capabilities = Capabilities(rollout_step=1, segments=False)

    def _file(self) -> Path:
        return Path(self.base_dir) / self.config.path

    def _all(self) -> dict:
        try:
            return json.loads(self._file().read_text())
        except FileNotFoundError:
            return {}

    async def read(self, name):
        pair = self._all().get(name)
        return None if pair is None else FlagState(pair[0], pair[1])

    async def write(self, name, state):
        flags = self._all()
        flags[name] = [state.enabled, state.rollout]
        self._file().write_text(json.dumps(flags))


class ConstConfig(Strict):
    type: Literal["acme-const"]
    value: float


class ConstSource(Source):
    kind = "acme-const"
    Config = ConstConfig

    def __init__(self, name, config, base_dir):
        super().__init__(name, config)

    async def query(self, query, ctx, series_label=None):
        return Reading.ok(self.config.value)
'''

ENTRY_POINTS = """\
[warroom.flag_providers]
acme-notes = acme_warroom:NotesFlags

[warroom.sources]
acme-const = acme_warroom:ConstSource
acme-broken = acme_warroom.gone:Nothing
"""


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(folder: Path) -> Path:
    """acme_warroom 1.0 as a wheel in `folder`, ready for `pip install`."""
    info = "acme_warroom-1.0.dist-info"
    files = {
        "acme_warroom/__init__.py": PACKAGE.encode(),
        f"{info}/METADATA": b"Metadata-Version: 2.1\nName: acme-warroom\nVersion: 1.0\n",
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: warroom-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": ENTRY_POINTS.encode(),
    }
    record = "\n".join([*(_record_line(n, d) for n, d in files.items()), f"{info}/RECORD,,"]) + "\n"
    wheel = folder / "acme_warroom-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr(f"{info}/RECORD", record)
    return wheel
