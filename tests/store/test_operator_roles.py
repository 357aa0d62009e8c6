"""PostgreSQL with one role per operator: the engine names a command's sender by the session's role,
as the database records it, never by what the client's row says."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest
import yaml

from tests.conftest import ALICE, BASE_PLAN, PG_PASSWORD
from tests.engine.test_engine import advance
from tests.support.servers import STORE_ROLE, grant_operators, operator_roles, postgres_database
from warroom.core.clock import VirtualClock
from warroom.core.verbs import Verb
from warroom.engine.build import build_engine
from warroom.engine.commands import CommandLoop
from warroom.plan.load import parse_plan
from warroom.plan.state import PostgresState
from warroom.store import open_store


@pytest.fixture
def operators(pg_state, monkeypatch) -> Iterator[dict[str, tuple[str, PostgresState]]]:
    """Two operators' own login roles (carol_N, dave_N): who → (role, how they connect)."""
    url = urlsplit(pg_state.url)
    port, db = url.port or 5432, url.path.lstrip("/")
    tag = uuid.uuid4().hex[:6]
    made = {}
    for who in ("carol", "dave"):
        role = f"{who}_{tag}"
        monkeypatch.setenv(f"WARROOM_TEST_{who.upper()}_PW", f"{role}-pw")
        made[who] = (role, PostgresState(url=f"postgresql://{role}@127.0.0.1:{port}/{db}", password=f"env:WARROOM_TEST_{who.upper()}_PW"))
    with operator_roles(port, db, *(role for role, _ in made.values()), password=lambda role: f"{role}-pw"):
        yield made


async def test_an_operator_signs_off_as_the_database_role_they_connected_with(pg_state, operators, tmp_path):
    names = {who: role for who, (role, _) in operators.items()}
    state = pg_state.keyed(f"signoff-{uuid.uuid4().hex[:8]}")
    data = yaml.safe_load(BASE_PLAN)
    data["phases"][0]["approvals"] = {"roles": {"security": 2}}
    data["roles"] = {"security": {"members": list(names.values())}}
    data["state"] = {"url": state.url, "password": f"env:{PG_PASSWORD}", "rollout": state.rollout}
    plan = parse_plan(yaml.safe_dump(data), str(tmp_path / "plan.yaml"), tmp_path)
    clock = VirtualClock(start=1_800_000_000.0)
    engine = build_engine(plan, clock=clock)
    await engine.start()
    try:
        url = urlsplit(pg_state.url)
        grant_operators(url.port or 5432, url.path.lstrip("/"), *names.values())
        await engine.tick()
        await engine.step_up(ALICE)
        loop = CommandLoop(engine, shutdown=None)  # type: ignore[arg-type]

        async def send_as(who: str, declared: str, verb: Verb = Verb.APPROVE) -> str:
            store = open_store(operators[who][1].keyed(state.rollout))
            try:
                command_id = store.send_command(verb, {"note": f"{who} checked"}, {"user": declared, "proof": "kernel: forged"})
            finally:
                store.close()
            claimed = engine.store.claim_command(engine.lease.fence)
            assert claimed is not None and claimed.id == command_id
            await loop._run(claimed)
            done = engine.store.command(command_id)
            assert done is not None
            return f"{done.status}: {done.message}"

        # carol's row says she is dave (and claims a kernel's proof): the database says carol.
        assert (await send_as("carol", declared=names["dave"])).startswith("done: approved; still awaiting security (")
        # carol again, now under her own name: a person counts once.
        assert "already approved this step: a person counts once" in await send_as("carol", declared=names["carol"])
        assert (await send_as("dave", declared="root")).startswith("done: approved: sign-off complete")
        await advance(engine, clock, 5)
        await engine.wait_idle()
        assert engine.phase_index == 1
        given = [e for e in engine.store.entries() if e.kind == "approval.given"]
        assert [(e.data["actor"]["user"], e.data["actor"]["proof"]) for e in given] == [
            (names["carol"], f"database role {names['carol']}"), (names["dave"], f"database role {names['dave']}")]

        # Writing the column itself changes nothing: the database sets it.
        with psycopg.connect(operators["carol"][1].url, password=f"{names['carol']}-pw", autocommit=True) as raw:
            raw.execute("INSERT INTO warroom.commands (rollout, created, verb, args, actor, sender) VALUES (%s, 0, 'pause', '{}', '{}', %s)",
                        (state.rollout, names["dave"]))
        forged = engine.store.claim_command(engine.lease.fence)
        assert forged is not None and forged.sender == names["carol"]
    finally:
        await engine.close()


def test_a_store_of_schema_1_gains_the_sender_column(postgres_cluster, pg_state):
    with postgres_database(postgres_cluster, f"warroom_sender_test_{os.getpid()}") as url:  # its own: the schema is taken apart
        state = PostgresState(url=url, password=f"env:{PG_PASSWORD}", rollout="launch")
        open_store(state).close()
        with psycopg.connect(url, password=os.environ[PG_PASSWORD], autocommit=True) as raw:
            raw.execute("DROP TRIGGER command_sender ON warroom.commands")
            raw.execute("ALTER TABLE warroom.commands DROP COLUMN sender")
            raw.execute("UPDATE warroom.meta SET version = 1")
        store = open_store(state)
        try:
            assert store.schema_version() == 3  # brought up to the newest (3: the sender column, freezes, stakeholder updates)
            store.send_command("pause", {}, {"user": "mallory"})
            with psycopg.connect(url, password=os.environ[PG_PASSWORD], autocommit=True) as raw:
                assert raw.execute("SELECT sender FROM warroom.commands").fetchone() == (STORE_ROLE,)
        finally:
            store.close()
