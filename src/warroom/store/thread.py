"""The engine's way to its store: one thread of its own, so no store call ever holds up the engine's loop.

The store's drivers are blocking (sqlite3, and psycopg used the same way for both
dialects), and one slow answer — a row lock, a database restarting behind a 5 s connect
timeout, a full disk's fsync — must not stop the engine from polling and judging its
guardrails. So every store call of an engine runs on this one thread, in the order it was
made: an intent's commit lands before the lease renewal that follows it, which lands
before the flag write that waits for that renewal. The engine awaits what it needs the
answer of (`call`) and hands over what it does not (`send`, and `latest` for what only its
newest version matters of: a snapshot, a batch of samples).

`reader()` is the store as seen from outside the engine's loop code (a test, a drill,
`warroom check`): each call runs on the thread too, after every write handed over before
it, so a reader sees what the engine has decided.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar, cast

from warroom.store.base import Store

T = TypeVar("T")


class StoreThread:
    def __init__(self, store: Store):
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warroom-store")
        self._thread: threading.Thread | None = None
        self._latest: dict[str, Callable[[Store], Any]] = {}  # per key, the newest call not started yet
        self._lock = threading.Lock()
        self._closed = False

    def _run(self, fn: Callable[[Store], T]) -> T:
        self._thread = threading.current_thread()
        return fn(self.store)

    def submit(self, fn: Callable[[Store], T]) -> Future[T]:
        return self._pool.submit(self._run, fn)

    async def call(self, fn: Callable[[Store], T]) -> T:
        """Run `fn(store)` on the store thread after everything handed over before; await its answer."""
        return await asyncio.wrap_future(self.submit(fn))

    def send(self, fn: Callable[[Store], T], done: Callable[[Future[T]], None] | None = None) -> None:
        """Hand `fn(store)` over without waiting; `done(future)` runs on the calling loop once it ran."""
        future = self.submit(fn)
        if done is not None:
            loop = asyncio.get_running_loop()
            future.add_done_callback(lambda f: loop.call_soon_threadsafe(done, f))

    def latest(self, key: str, fn: Callable[[Store], T], done: Callable[[Future[T]], None] | None = None) -> None:
        """Like `send`, but while a call of this `key` waits its turn, a newer one replaces it."""
        with self._lock:
            waiting = key in self._latest
            self._latest[key] = fn
        if not waiting:
            self.send(lambda store: self._take(key)(store), done)

    def _take(self, key: str) -> Callable[[Store], Any]:
        with self._lock:
            return self._latest.pop(key)

    async def settled(self) -> None:
        """Until everything handed over so far has run (and its `done` was told)."""
        await self.call(lambda store: None)
        await asyncio.sleep(0)  # the `done` callbacks were queued on the loop before this answer: let them run

    def reader(self) -> Store:
        """The store for callers outside the engine's loop code: each call runs here, after the writes in flight."""
        return cast(Store, _Reader(self))

    def on_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def close(self) -> None:
        """No more calls; those handed over still run (the thread ends once they did)."""
        self._closed = True
        self._pool.shutdown(wait=False)


class _Reader:
    def __init__(self, thread: StoreThread):
        self._thread = thread

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._thread.store, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            thread = self._thread
            if thread._closed or thread.on_thread():  # nothing in flight any more, or already on it
                return attr(*args, **kwargs)
            return thread.submit(lambda store: getattr(store, name)(*args, **kwargs)).result()

        return call
