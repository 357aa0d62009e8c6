"""The engine lease: one engine drives a rollout; others wait as standbys; fencing by epoch.

The lease is a row in the store (holder, epoch, heartbeat, expiry, on the store's clock:
it is compared between processes and hosts). Taking it from a new holder raises the epoch;
every commit of the engine carries that epoch and the store checks it in the same
transaction, so an engine that was frozen past its lease and taken over can write
nothing. Flag writes are not in the store, so right before each one the engine renews
the lease (a fenced write) and counts what is left of it on its own monotonic clock from
the moment it asked: a write goes out only with at least half the TTL ahead. A renewal
that took long (a slow network, a locked row) or failed (the database away) leaves less:
the write waits and is retried, as a failed attempt, until the margin is back or another
engine has taken over (then this one is fenced).

A holder that is provably dead on this host (its pid is gone, or reused) is replaced at
once; on another host only the expiry tells. A holder named in `replacing` (`warroom up
--replace`, which told it first) is replaced at once too, alive: the lease goes from it to
the new engine in one write, never through a moment when nobody holds it.

Every lease call goes through the engine's store thread (store/thread.py) and is awaited:
the event loop goes on judging guardrails while the store answers. A renewal runs after
every commit handed over before it, so once the renewal before a flag write is back, the
write's intent is committed (or held, when the store cannot be written).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable

from warroom.core.identity import account_name
from warroom.flags.base import FlagError
from warroom.store.base import Fence, Fenced, Holder, LeaseInfo, Store, StoreUnwritable, hostname, process_started
from warroom.store.thread import StoreThread

log = logging.getLogger(__name__)

LEASE_TTL = 10.0  # seconds without a heartbeat before a standby may take over
HEARTBEAT = 1.0  # seconds between renewals: a slow tick must never look like a dead engine
MARGIN = 0.5  # share of the TTL that must be left of the lease for a flag write to go out


class LeaseTooThin(FlagError):
    """No flag write now: the lease might run out before the write lands; retried like a failed write."""


class EngineBusy(Exception):
    """Another engine drives this rollout; the message names it."""


def this_process() -> Holder:
    """A new engine of this process: who runs it, where, which process, which engine of it."""
    user = account_name(os.getuid())  # the kernel's uid: a spoofed LOGNAME does not rename an engine
    return Holder(user, hostname(), os.getpid(), process_started(os.getpid()), uuid.uuid4().hex[:8])


class Lease:
    def __init__(self, thread: StoreThread, holder: Holder, *, ttl: float = LEASE_TTL, speed: str = "1", log_path: str = ""):
        self.thread = thread
        self.holder = holder
        self.ttl = ttl
        self.speed = speed
        self.log_path = log_path
        self.info: LeaseInfo | None = None  # ours, once acquired
        self.previous: LeaseInfo | None = None  # the lease as it was when we took it
        self.unrenewed: str = ""  # why the last renewal failed (a full disk), "" when it went through
        self.valid_until = 0.0  # monotonic time the lease surely still holds: asked-at + TTL of the last renewal
        self.replacing = ""  # the holder id this engine replaces on request (`up --replace`): taken over while it drives

    @property
    def held(self) -> bool:
        return self.info is not None

    @property
    def fence(self) -> Fence:
        if self.info is None:
            raise Fenced(0, None)
        return self.info.fence()

    @property
    def epoch(self) -> int:
        return self.info.epoch if self.info else 0

    async def try_acquire(self) -> LeaseInfo | None:
        """Take the lease if it is free, expired, or its holder is provably dead; the lease as it now is."""
        def take(store: Store) -> tuple[LeaseInfo | None, LeaseInfo]:
            current = store.lease()
            replacing = None
            if current is not None and current.holder is not None and current.holder.id != self.holder.id and (
                    current.holder.id == self.replacing or current.holder.provably_gone()):
                replacing = current.holder.id  # a killed engine on this host cannot renew: don't wait out its lease
            return current, store.acquire_lease(self.holder, self.ttl, replacing=replacing, speed=self.speed, log=self.log_path)

        asked = time.monotonic()
        current, got = await self.thread.call(take)
        if got.holder is not None and got.holder.id == self.holder.id:
            self.valid_until = asked + self.ttl
            if self.info is None:
                self.previous = current
            self.info = got
        return got

    async def acquire(self) -> None:
        """Take the lease now or raise EngineBusy (an engine built in-process, for tests and virtual time)."""
        got = await self.try_acquire()
        if not self.held:
            assert got is not None and got.holder is not None
            raise EngineBusy(f"another engine drives this rollout: {got.holder.label()} (epoch {got.epoch})")

    async def wait(self, stop: asyncio.Event, waiting: Callable[[LeaseInfo], None]) -> bool:
        """As a standby: until the lease is ours (True) or `stop` is set (False). `waiting` is told once who drives."""
        told = False
        away = ""  # why the store cannot be reached (a database away), said once
        try:
            while not stop.is_set():
                try:
                    got = await self.try_acquire()
                    if away:
                        log.warning("standby: the store answers again")
                    away = ""
                    if self.held:
                        return True
                    if not told and got is not None:
                        waiting(got)
                        told = True
                    await self.thread.call(lambda store: store.standby(self.holder))
                except StoreUnwritable as exc:  # a standby outlives an outage of its store: it is what takes over after one
                    if not away:
                        log.error("standby: cannot reach the store (%s); trying again every %gs", exc, HEARTBEAT)
                    away = str(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), HEARTBEAT)
            return False
        finally:
            if told:
                with contextlib.suppress(StoreUnwritable):  # its row ages out: clients count a standby only while it heartbeats
                    await self.thread.call(lambda store: store.drop_standby(self.holder))

    async def renew(self) -> None:
        """Extend the lease (a fenced write): Fenced when another engine took it over."""
        asked = time.monotonic()  # the store's expiry counts from later than this: ours errs on the safe side
        fence = self.fence
        try:
            self.info = await self.thread.call(lambda store: store.renew_lease(fence, self.ttl))
            self.valid_until = asked + self.ttl
            if self.unrenewed:
                log.warning("the lease is renewed again (%s is over)", self.unrenewed)
            self.unrenewed = ""
        except StoreUnwritable as exc:
            if not self.unrenewed:
                log.error("cannot renew the engine lease: %s", exc)
            self.unrenewed = str(exc)

    async def check(self) -> None:
        """Right before a flag write: Fenced when another engine took the lease over;
        LeaseTooThin when less than the safety margin of it is surely left.

        When the store cannot be written (a full disk) the renewal cannot go through; if
        every engine shares that store's fate (SQLite), none can have taken over, and the
        lease row still naming us is proof enough: a rollback must still go out.
        """
        await self.renew()
        if self.unrenewed and self.thread.store.shared_fate:
            now = await self.thread.call(lambda store: store.lease())
            if now is None or now.holder is None or now.holder.id != self.holder.id or now.epoch != self.epoch:
                raise Fenced(self.epoch, now)
            return
        left = self.valid_until - time.monotonic()
        if left < self.ttl * MARGIN:
            why = f"the store cannot be written: {self.unrenewed}" if self.unrenewed else "the store answered slowly"
            raise LeaseTooThin(f"not written: {max(left, 0):.1f}s of the engine lease surely left, less than the safety margin "
                               f"({self.ttl * MARGIN:g}s; {why})")

    async def keep(self, on_fenced: Callable[[Fenced], None]) -> None:
        """The heartbeat, every second, on a task of its own until cancelled or fenced."""
        while True:
            try:
                await self.renew()
            except Fenced as exc:
                on_fenced(exc)
                return
            await asyncio.sleep(HEARTBEAT)

    async def release(self) -> None:
        if self.info is not None:
            fence = self.info.fence()
            try:
                await self.thread.call(lambda store: store.release_lease(fence))
            finally:
                self.info = None
