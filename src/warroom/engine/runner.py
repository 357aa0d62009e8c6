"""Run an Engine on its own thread and asyncio loop, for a UI that owns the main loop.

The console's loop must never wait on a source or a flag API, so the engine lives on
a thread of its own. Commands cross over with `submit` (a concurrent Future comes
back); snapshots go out through the engine's listeners, called on the engine thread.
Nothing here knows about any UI toolkit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Awaitable, Callable, TypeVar

from .engine import Engine
from ..snapshot import Snapshot

T = TypeVar("T")


class EngineRunner:
    def __init__(
        self,
        engine: Engine,
        *,
        ticking: bool = True,
        on_error: Callable[[BaseException], None] | None = None,
        after_tick: Callable[[Snapshot], Awaitable[None]] | None = None,
    ):
        """`ticking`: tick every poll interval; False leaves ticks to `submit` (tests drive time).

        `on_error` is called on the engine thread if start-up or the tick loop fails;
        `after_tick` runs on it between ticks (a drill watches for its end there).
        """
        self.engine = engine
        self.ticking = ticking
        self.on_error = on_error
        self.after_tick = after_tick
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="warroom-engine", daemon=True)
        self._stop = asyncio.Event()
        self._started = asyncio.Event()
        self._failed: BaseException | None = None
        self.published = threading.Event()  # set by the first snapshot (and every one after)
        engine.snapshot_listeners.append(lambda _snap: self.published.set())

    # ------------------------------------------------------------ caller's thread

    def start(self) -> None:
        """Start the engine thread; calling it again is a no-op."""
        if self._thread.ident is None:
            self._thread.start()

    def submit(self, fn: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """Run `fn()` on the engine loop once the engine has started; never blocks."""
        return asyncio.run_coroutine_threadsafe(self._call(fn), self.loop)

    def stop(self, timeout: float = 4.0) -> bool:
        """Stop ticking, close the engine (journal, lease) and end the thread.

        Returns False if the engine did not finish within `timeout` (the thread is a
        daemon, so the process can still exit; a rollback it left resumes next start).
        """
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------ engine thread

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        # Commands wait for start(): it recovers a dead console's unfinished rollback first.
        await self._started.wait()
        if self._failed is not None:
            raise RuntimeError(f"the engine did not start: {self._failed}")
        return await fn()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            # Commands submitted while closing get cancelled rather than hang their caller.
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()

    async def _serve(self) -> None:
        try:
            await self.engine.start()
            self._started.set()
            if self.ticking:
                await self.engine.run(self._stop, self.after_tick)
            else:
                await self._stop.wait()
        except Exception as exc:  # reported to the UI as a message; the engine is closed below
            self._failed = exc
            if self.on_error:
                self.on_error(exc)
        finally:
            self._started.set()
            await self.engine.close()
