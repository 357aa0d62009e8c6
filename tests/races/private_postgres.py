"""A PostgreSQL cluster of a test's own, for a test that restarts its database: the shared
cluster 15/main serves every other test and is never restarted. Debian's server binaries,
`initdb` into a temporary folder owned by `postgres`, on a free loopback port."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.helpers import free_port, missing
from tests.support.servers import STORE_PASSWORD, STORE_ROLE

BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, text=True, timeout=120)


@dataclass
class PrivateCluster:
    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str) -> str:
        return f"postgresql://{STORE_ROLE}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str) -> str:
        return _as_postgres(str(BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-v", "ON_ERROR_STOP=1",
                            "-tAc", sql).stdout.strip()

    def start(self) -> None:
        _as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"), "-w",
                     "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1", "start")

    def stop(self, mode: str = "fast") -> None:
        _as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")


@pytest.fixture
def private_postgres() -> Iterator[PrivateCluster]:
    """A cluster of this test's own with the store's role and a database `launch` it owns."""
    if not (BIN / "initdb").exists() or shutil.which("runuser") is None:
        missing("PostgreSQL 15's server binaries are needed (apt-get install postgresql-15; .ci/install-servers)")
    folder = Path(tempfile.mkdtemp(prefix="warroom-pg-"))
    shutil.chown(folder, "postgres", "postgres")
    cluster = PrivateCluster(folder, free_port())
    try:
        _as_postgres(str(BIN / "initdb"), "-D", str(cluster.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        cluster.start()
        cluster.psql(f"CREATE ROLE {STORE_ROLE} LOGIN PASSWORD '{STORE_PASSWORD}'")
        cluster.psql(f"CREATE DATABASE launch OWNER {STORE_ROLE}")
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            cluster.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)
