"""The bridge from the store to the screen: a thread that waits on the store and hands the
console the newest snapshot, coalesced (only the newest matters), and says when the store is away.

Messages posted before the screen is up wait until it mounts; at most one snapshot waits for
the screen at a time. The console (app.py) takes it in `on_snapshot_arrived`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from textual.message import Message

from warroom.client import EngineClient
from warroom.core.secrets import redact
from warroom.core.snapshot import Snapshot
from warroom.store.base import StoreUnwritable


class SnapshotArrived(Message):
    """The engine published (or its liveness changed); the newest snapshot waits in StoreWatch.take()."""


class StoreWatch:
    def __init__(self, client: EngineClient, post: Callable[[Message], Any], say: Callable[..., None]) -> None:
        """`post`: the app's post_message (on the screen's loop); `say(message, **notice)`: a notice, from this thread."""
        self.client = client
        self.post = post
        self.say = say
        self._latest: Snapshot | None = None
        self._shown_first: Snapshot | None = None
        self._lock = threading.Lock()
        # The watcher may read a snapshot before the screen is up; its message waits until mounted.
        self._mounted = False
        self._held: list[Message] = []
        self._unwatch = threading.Event()
        self._screen_loop: asyncio.AbstractEventLoop | None = None  # the screen's, once mounted

    def take(self) -> Snapshot | None:
        """The snapshot waiting for the screen, if any (it waits no more)."""
        with self._lock:
            snap, self._latest = self._latest, None
        return snap

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """The screen is up: post what was held for it, and start watching."""
        self._screen_loop = loop
        with self._lock:
            self._mounted = True
            held, self._held = self._held, []
        for message in held:
            self.post(message)
        threading.Thread(target=self._watch, name="warroom-watch", daemon=True).start()

    def stop(self) -> None:
        self._unwatch.set()  # the watcher thread ends with the screen

    def _to_app(self, message: Message) -> None:
        """Worker thread: post now if the screen is up, else hold it for on_mount."""
        with self._lock:
            if not self._mounted:
                self._held.append(message)
                return
        assert self._screen_loop is not None  # set before _mounted
        with contextlib.suppress(RuntimeError):  # the app's loop has closed: nobody left to show it to
            self._screen_loop.call_soon_threadsafe(self.post, message)

    def show(self, snap: Snapshot) -> None:
        """Any thread: the newest snapshot to show; at most one message waits for the screen."""
        if self._shown_first is None:
            self._shown_first = snap  # the watcher starts from it instead of reading it again
        with self._lock:
            waiting = self._latest is not None
            self._latest = snap
        if not waiting:
            self._to_app(SnapshotArrived())

    def _watch(self) -> None:
        """Worker thread: wait on the store; on a change read the snapshot, and every second look
        whether the engine is still alive (an engine that died publishes nothing more).

        It follows until the screen closes, whatever the store does meanwhile: a failure to read
        it (a database away, a table it may no longer read, a snapshot it cannot make sense of) is
        said once and tried again every second. A watcher that ended on one left a console showing
        RUNNING over numbers a minute old while the engine rolled back."""
        waiter = self.client.watch()
        last: Snapshot | None = self._shown_first
        first_frame = last is not None  # what the first frame shows is not news
        cut_off = False  # the store could not be read: said once, tried again every second
        try:
            while not self._unwatch.is_set():
                try:
                    if first_frame:
                        self.client.news()
                        first_frame = False
                    changed = waiter.wait(1.0) and self.client.news() or last is None or cut_off
                    if changed:
                        last = self.client.snapshot() or last
                        if last is not None:
                            self.show(last)
                    elif last is not None:
                        seen = self.client.viewed(last)
                        if seen.automation != last.automation:  # the engine died (or came back) with nothing new published
                            last = seen
                            self.show(last)
                    if cut_off:
                        self.say("the rollout's store answers again", timeout=10)
                    cut_off = False
                except Exception as exc:  # noqa: BLE001  (whatever it is, the screen must not freeze on it)
                    if self._unwatch.is_set():
                        return
                    if not cut_off:
                        why = "cannot reach the rollout's store" if isinstance(exc, StoreUnwritable) else "cannot read the rollout's store"
                        self.say(redact(f"{why}: {exc}; trying again every second"), severity="error", timeout=30)
                    cut_off = True
                    self._unwatch.wait(1.0)
        finally:
            waiter.close()
