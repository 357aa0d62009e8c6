"""The page process cannot write: on PostgreSQL it logs in as a role that may only SELECT (the
plan's `page.state`), follows the launch live through the same change waiter as a console, and the
database itself refuses that role's writes; on SQLite it opens the state file read-only, so a state
file nobody may write still serves the page."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.page.conftest import WARROOM, launch
from tests.support.servers import _psql
from tests.support.waiting import until

PAGE_PASSWORD_ENV = "WARROOM_TEST_PAGE_PG_PASSWORD"


def test_on_postgresql_the_page_reads_as_a_select_only_role_that_cannot_write(serve, tmp_path, pg_state, postgres_cluster,
                                                                              monkeypatch):
    rollout = f"page-{uuid.uuid4().hex[:8]}"
    role, password = f"warroom_page_{uuid.uuid4().hex[:8]}", "Page-Reader-91b2c4"
    database = pg_state.url.rsplit("/", 1)[1]
    page_url = f"postgresql://{role}@127.0.0.1:{postgres_cluster}/{database}"
    monkeypatch.setenv(PAGE_PASSWORD_ENV, password)
    plan = launch(tmp_path / "launch", {
        "state": {"url": pg_state.url, "password": pg_state.password, "rollout": rollout},
        "page": {"state": {"url": page_url, "password": f"env:{PAGE_PASSWORD_ENV}", "rollout": rollout}},
    })
    _psql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'", postgres_cluster)
    try:
        _psql(f"GRANT CONNECT ON DATABASE {database} TO {role}", postgres_cluster)
        for grant in (f"GRANT USAGE ON SCHEMA warroom TO {role}", f"GRANT SELECT ON ALL TABLES IN SCHEMA warroom TO {role}"):
            _psql(grant, postgres_cluster, database)
        served = serve(plan=plan)
        until("the page read through the SELECT-only role", lambda: "1/3 Canary 5%" in served.get().text)
        sessions = _psql(f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{role}'", postgres_cluster, database)
        assert int(sessions.strip()) >= 1  # the page's own connections, as that role
        # Live: a pause reaches the page through the change waiter (LISTEN needs no write).
        assert served.verb("pause", "--reason", "checking dashboards").returncode == 0
        until("PAUSED on the page", lambda: 'id="state">PAUSED' in served.get().text)
        # The database refuses the page's role a write, even in a writable transaction.
        with psycopg.connect(page_url, password=password, autocommit=True) as raw, pytest.raises(psycopg.errors.InsufficientPrivilege):
            raw.execute("INSERT INTO warroom.commands (rollout, created, verb, args, actor) VALUES (%s, 0, 'rollback', '{}', '{}')",
                        (rollout,))
    finally:
        subprocess.run([*WARROOM, "down", str(plan), "--force"], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        _psql(f"DROP OWNED BY {role}", postgres_cluster, database)
        _psql(f"DROP ROLE IF EXISTS {role}", postgres_cluster)


def test_on_sqlite_the_page_opens_the_state_read_only(serve, tmp_path):
    served = serve()
    until("the page in phase 1", lambda: "1/3 Canary 5%" in served.get().text)
    state = served.folder / "state.sqlite"
    pid = served.proc.pid
    # The page process holds the state file open for reading only: its descriptors say so.
    modes = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(state):
                info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
                flags = int(next(line for line in info.splitlines() if line.startswith("flags:")).split()[1], 8)
                modes.append(flags & os.O_ACCMODE)
        except (FileNotFoundError, StopIteration):
            continue
    assert modes and all(mode == os.O_RDONLY for mode in modes), modes
