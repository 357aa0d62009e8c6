"""The automation lease: one process at a time acts on a rollout's guardrails.

Leases use wall time because they are shared between processes whose clocks may run
fast (a drill at 60×).
"""

from __future__ import annotations

import os
import socket
import time

from ..store import Store

LEASE = "automation"


def dead_local_holder(holder: str) -> bool:
    """True when a lease holder ("user@host pid N") is a process on this host that no longer exists."""
    who, _, pid = holder.rpartition(" pid ")
    if not pid.isdigit() or who.partition("@")[2] != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class AutomationLease:
    def __init__(self, store: Store, holder: str, ttl: float, wanted: bool):
        self.store = store
        self.holder = holder
        self.ttl = ttl
        self.wanted = wanted
        self.held = False
        self.driver = ""  # who holds it (us, someone else, or nobody: "")

    def refresh(self) -> None:
        now = time.time()
        holder = self.store.lease_holder(LEASE, now)
        if holder and holder != self.holder and dead_local_holder(holder):
            # A process on this host that was killed cannot renew; don't wait out its lease.
            self.store.release_lease(LEASE, holder)
            holder = ""
        if not self.wanted:
            self.held, self.driver = False, holder
            return
        self.driver = self.store.acquire_lease(LEASE, self.holder, self.ttl, now)
        self.held = self.driver == self.holder

    def release(self) -> None:
        if self.held:
            self.store.release_lease(LEASE, self.holder)
        self.held = False
