"""How the console sends commands: off the screen's thread, one at a time in the order they
were pressed, and a rollback never given up for a store that cannot be reached for a moment
(as `warroom rollback`): it says so at each try, with the count, and sends it as soon as the
store answers, until the human stops trying. A rollback or a pause the store cannot take (a
full disk) goes to this host's engine over its local socket instead (`EngineClient.send_or_ask`).

One at a time: each press's command was sent from a thread of its own, and three threads
race for the store, so tick, untick, tick could reach the engine as tick, tick, untick. A
command waits only for those pressed before it to be handed over (queued in the store, or
taken by the engine over its local socket), never for their outcome.

A rollback takes the head of the line: going back never waits, and a write already under way
on its thread cannot be taken back (a store busy behind another writer holds it for 15 s). A
rollback is handed over on a thread of its own at once, whatever was pressed before it; what is
pressed after it goes after it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from warroom.client import Asked, EngineClient
from warroom.core.secrets import redact
from warroom.core.verbs import Verb
from warroom.store.base import StoreUnwritable

T = TypeVar("T")


async def in_daemon_thread(fn: Callable[[], T]) -> T:
    """`fn()` on a daemon thread: waiting for an engine that never answers must not hold up
    the console's exit (asyncio's own executor joins its threads when the loop closes)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(done: Callable[[], None]) -> None:
        def once() -> None:
            if not future.done():
                done()

        with contextlib.suppress(RuntimeError):  # the screen's loop closed: nobody waits any more
            loop.call_soon_threadsafe(once)

    def run() -> None:
        try:
            result = fn()
        except Exception as error:
            settle(functools.partial(future.set_exception, error))
        else:
            settle(functools.partial(future.set_result, result))

    threading.Thread(target=run, name="warroom-command", daemon=True).start()
    return await future


class Sending:
    def __init__(self, client: EngineClient, notify: Callable[..., None], from_thread: Callable[..., Any]):
        self.client = client
        self.notify = notify  # on the screen's loop
        self.from_thread = from_thread  # runs a call on the screen's loop from a worker thread
        self._stop = asyncio.Event()  # Esc: stop retrying a rollback the store would not take
        self._line = asyncio.Lock()  # fair: the commands waiting for it are handed over in the order pressed
        self._going_back: list[asyncio.Event] = []  # rollbacks not handed over yet: set once each is
        self.in_line = 0  # commands waiting for those pressed before them to be handed over

    def stop_trying(self) -> None:
        self._stop.set()

    async def _turn(self, verb: Verb) -> _Turn:
        """This command's turn to be handed over: a rollback's at once; any other's once every command
        pressed before it was."""
        loop = asyncio.get_running_loop()
        if verb is Verb.ROLLBACK:
            handed = asyncio.Event()
            self._going_back.append(handed)
            return _Turn(lambda: self._gone_back(handed), loop)
        ahead = list(self._going_back)  # rollbacks pressed before this one, on their own way
        self.in_line += 1
        try:
            await self._line.acquire()
            try:
                for handed in ahead:
                    await handed.wait()
            except BaseException:
                self._line.release()
                raise
        finally:
            self.in_line -= 1
        return _Turn(self._line.release, loop)

    def _gone_back(self, handed: asyncio.Event) -> None:
        handed.set()
        self._going_back.remove(handed)

    async def queue(self, label: str, verb: Verb, args: dict[str, object]) -> int | Asked | None:
        """The command queued in the store, its id, or asked of this host's engine over its local
        socket, answered; None when the human stopped trying (a rollback only: other commands
        fail at once with the store's message). A rollback goes at once; any other command once
        those pressed before it went."""
        turn = await self._turn(verb)
        try:
            return await self._hand_over(label, verb, args, turn)
        finally:
            turn.over()

    async def _hand_over(self, label: str, verb: Verb, args: dict[str, object], turn: _Turn) -> int | Asked | None:
        """`queue` in its turn: a rollback tried again until the store answers, its turn held (what
        was pressed after it goes after it)."""
        tries = 0
        if verb is Verb.ROLLBACK:  # Esc stops the rollbacks trying now, not one pressed later
            self._stop.clear()
        while True:
            try:
                # Taken by the engine over its local socket: handed over, though its outcome is still to come.
                return await in_daemon_thread(lambda: self.client.send_or_ask(verb, args, lambda _why: turn.over_from_thread()))
            except StoreUnwritable as error:
                if verb is not Verb.ROLLBACK:
                    raise
                tries += 1
                self.notify(f"not sent yet (try {tries}): {redact(str(error))}; trying again until the store answers "
                            "(Esc stops trying)", title=label, severity="error", timeout=60)
                try:
                    # 0.25 s, 0.5 s, 1 s, then every 2 s, as `warroom rollback` tries (a console imports no outbound code).
                    await asyncio.wait_for(self._stop.wait(), min(2.0, 0.25 * 2 ** min(tries - 1, 8)))
                except TimeoutError:
                    continue
                self.notify(f"stopped trying after {tries} tries: the rollback was NOT sent", title=label, severity="error")
                return None

    def following(self, label: str) -> Callable[[StoreUnwritable, int], None]:
        """What the screen says while the store cannot be reached after a command went out (worker thread)."""
        def say(error: StoreUnwritable, tries: int) -> None:
            self.from_thread(self.notify, f"sent; the store cannot be reached to follow it (try {tries}): {redact(str(error))}; "
                             "the engine goes on", title=label, severity="warning", timeout=30)

        return say


class _Turn:
    """A command's turn in the console's line; over once it was handed over, or could not be."""

    def __init__(self, release: Callable[[], None], loop: asyncio.AbstractEventLoop):
        self._release = release
        self._loop = loop
        self._held = True

    def over(self) -> None:
        """On the screen's loop: the next command's turn (once, however often told)."""
        if self._held:
            self._held = False
            self._release()

    def over_from_thread(self) -> None:
        with contextlib.suppress(RuntimeError):  # the screen's loop closed: nobody waits any more
            self._loop.call_soon_threadsafe(self.over)
