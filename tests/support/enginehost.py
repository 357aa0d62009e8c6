"""A real engine on a thread of its own, taking commands from the store as its process does,
but ticked by the test: every screen then shows a known instant.

The console under test is a client on its own connection to the same SQLite file, exactly
as a console process is; only the ticking is left to the test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tests.support.waiting import DEADLINE
from warroom.engine.commands import CommandLoop
from warroom.engine.engine import Engine
from warroom.engine.local_socket import LocalSocket

T = TypeVar("T")


class EngineHost:
    def __init__(self, engine: Engine, *, after_tick: Callable[[Any], Awaitable[None]] | None = None, ticking: bool = False):
        """`ticking`: tick every poll interval as the process does (`after_tick` between ticks: a drill)."""
        self.engine = engine
        self.after_tick = after_tick
        self.ticking = ticking
        self.loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name="warroom-engine-host", daemon=True)
        self._failed: BaseException | None = None
        self.commands = CommandLoop(engine, self._shutdown)
        self._thread.start()
        self._started.wait(DEADLINE)
        if self._failed is not None:
            raise self._failed  # another engine drives this state, or the engine could not start

    def submit(self, fn: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """Run `fn()` on the engine's loop (a tick, or a command as the engine's own method)."""
        return asyncio.run_coroutine_threadsafe(fn(), self.loop)

    def listen_locally(self) -> concurrent.futures.Future[None]:
        """Listen on the engine's local socket too, as its process does, until the host stops (the kernel
        then names who sends a sign-off or a rollback that way)."""
        return self.submit(lambda: LocalSocket(self.engine, self.commands).serve(self._stop))

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float = DEADLINE) -> T:
        return self.submit(fn).result(timeout)

    def stop(self, timeout: float = DEADLINE) -> bool:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
        return not self._thread.is_alive()

    async def _shutdown(self, *_: Any) -> str:
        self._stop.set()
        return "stopping"

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())
        self.loop.close()

    async def _serve(self) -> None:
        try:
            await self.engine.start()
            self.engine.publish(force=True)
        except BaseException as exc:
            self._failed = exc
            return
        finally:
            self._started.set()

        try:
            if self.ticking:
                serving = asyncio.ensure_future(self.commands.serve(self._stop))
                await self.engine.run(self._stop, self.after_tick)
                await serving
            else:
                await self.commands.serve(self._stop)
        finally:
            await self.engine.close()
