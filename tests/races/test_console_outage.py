"""`R` in a console while the store cannot be reached (issue 21, item 19): the console keeps
trying, saying so with the count, and the rollback goes out once the database answers again.
A real console in tmux, a real engine, the shared PostgreSQL cluster's test database refusing
connections for a while (as in tests/process/test_across_hosts.py).

Whatever the store does meanwhile, the console follows again once it answers: a failure to
read it never leaves a screen frozen on an old picture."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator

import psycopg
import pytest

from tests.conftest import PG_PASSWORD
from tests.process.conftest import WARROOM
from tests.process.test_across_hosts import EU, SharedRollout, shared  # noqa: F401  (shared: the fixture)
from tests.support.servers import STORE_ROLE
from tests.support.waiting import until

pytestmark = pytest.mark.slow
LAPTOP = {"WARROOM_HOSTNAME": "laptop-ic"}


def tries_shown(screen: str) -> int:
    return max((int(n) for n in re.findall(r"not sent yet \(try (\d+)\)", screen)), default=0)


def console_at_phase_one(make, tmux) -> SharedRollout:
    """An engine driving at phase 1, and a console on another host in tmux showing it."""
    r: SharedRollout = make(automation={"step_up": "manual"})
    eu = r.engine(EU)
    r.started.append(eu)
    until("the engine to drive", lambda: r.driver() == eu.pid)
    assert r.verb("step").returncode == 0
    tmux.start(f"{' '.join(WARROOM)} {r.plan}", env={**LAPTOP, "XDG_STATE_HOME": os.environ["XDG_STATE_HOME"]}, size=(160, 40))
    tmux.wait_for("RUNNING")
    return r


@contextlib.contextmanager
def store_away_while_r_is_pressed(pg_state, tmux) -> Iterator[None]:
    """The test database refuses every connection; `R` pressed; the console tried twice or more. It
    answers again when the block ends."""
    base, name = pg_state.url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", password=os.environ[PG_PASSWORD], autocommit=True) as raw:
        raw.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
        try:
            raw.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            tmux.run("send-keys", "-t", tmux.name, "R")
            until("the console to say it tries again", lambda: tries_shown(tmux.screen()) >= 2, 30)
            yield
        finally:
            raw.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")


@contextlib.contextmanager
def snapshots_unreadable(pg_state) -> Iterator[None]:
    """The store's role may not read the published snapshots (a grant taken back by mistake); given back when the block ends."""
    with psycopg.connect(pg_state.url, password=os.environ[PG_PASSWORD], autocommit=True) as raw:
        raw.execute(f"REVOKE SELECT ON warroom.snapshot FROM {STORE_ROLE}")
        try:
            yield
        finally:
            raw.execute(f"GRANT SELECT ON warroom.snapshot TO {STORE_ROLE}")


def seen_by_both(r: SharedRollout, tmux, what: str, done: Callable[[list[str]], bool]) -> None:
    """Until the store's journal shows `what` happened (the engine did it), then until the console
    shows `what` too: a failure says which of the two never got there."""
    def both() -> str:
        return f"the screen:\n{tmux.screen()}\njournal: {r.kinds()}\nstatus: {r.verb('status').stdout}\nengine log:\n{r.output(EU)[-3000:]}"

    until(f"the engine: {what}", lambda: done(r.kinds()), show=both)
    until(f"the console: {what}", lambda: what in tmux.screen(), show=both)


def test_r_during_a_store_outage_keeps_trying_and_rolls_back_once_the_store_answers(shared, flags, pg_state, tmux):  # noqa: F811  (the fixture imported above)
    r = console_at_phase_one(shared, tmux)
    with store_away_while_r_is_pressed(pg_state, tmux):
        pass
    seen_by_both(r, tmux, "ROLLED BACK", lambda kinds: "rollback.outcome" in kinds)
    assert flags.flags["feature"]["enabled"] is False
    kinds = r.kinds()
    assert kinds.count("rollback.intent") == 1 and "rollback.outcome" in kinds
    intent = next(e for e in r.store.entries() if e.kind == "rollback.intent")
    assert intent.actor.startswith(f"{STORE_ROLE}@"), intent.actor  # the human at the console, as the database proves them (its role)


def test_esc_stops_trying_and_nothing_is_sent(shared, flags, pg_state, tmux):  # noqa: F811  (the fixture imported above)
    r = console_at_phase_one(shared, tmux)
    with store_away_while_r_is_pressed(pg_state, tmux):
        tmux.run("send-keys", "-t", tmux.name, "Escape")
        tmux.wait_for("the rollback was NOT sent")
    tmux.wait_for("the rollout's store answers again", 30)
    assert r.verb("status").returncode == 0 and "rollback.intent" not in r.kinds()


def test_a_store_it_cannot_read_for_a_while_does_not_freeze_the_console(shared, pg_state, tmux):  # noqa: F811  (the fixture imported above)
    """A read failure other than a lost connection ended the console's watcher: the screen then
    showed the last picture for ever (RUNNING, its numbers ageing) whatever the engine did."""
    r = console_at_phase_one(shared, tmux)
    with snapshots_unreadable(pg_state):
        tmux.wait_for("cannot read the rollout")
    assert r.verb("pause", "--reason", "after the grant came back").returncode == 0
    seen_by_both(r, tmux, "PAUSED", lambda kinds: "pause" in kinds)
