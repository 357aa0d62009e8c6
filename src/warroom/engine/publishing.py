"""What the engine hands its store without waiting: the snapshot (only the newest matters) and samples (expendable).

Both go through the store thread, coalesced: while one publication waits its turn behind a
slow store, a newer snapshot replaces it; samples wait in a bounded batch, the oldest
dropped first, and a batch the store cannot take is dropped (the journal says why the
store cannot be written). Neither ever holds up the engine's loop, nor piles up behind an
outage. A write that finds another engine's epoch tells `on_fenced`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from warroom.store.base import Fence, Fenced, Store, StoreError
from warroom.store.thread import StoreThread

SAMPLES_HELD = 120  # ticks of samples that may wait for a slow store (beyond: the oldest go)


class Publisher:
    def __init__(self, thread: StoreThread, fence: Callable[[], Fence], on_fenced: Callable[[Fenced], None]):
        self.thread = thread
        self.fence = fence
        self.on_fenced = on_fenced
        self._samples: deque[tuple[float, Mapping[str, float | None]]] = deque(maxlen=SAMPLES_HELD)

    def snapshot(self, body: dict[str, Any]) -> None:
        fence = self.fence()
        self.thread.latest("snapshot", lambda store: store.publish(fence, body), self._done)

    def samples(self, ts: float, values: Mapping[str, float | None]) -> None:
        if values:
            self._samples.append((ts, values))
            fence = self.fence()
            self.thread.latest("samples", lambda store: self._write_samples(store, fence), self._done)

    def _write_samples(self, store: Store, fence: Fence) -> None:
        while self._samples:
            ts, values = self._samples.popleft()
            try:
                store.record_samples(fence, ts, values)
            except Fenced:
                raise
            except StoreError:
                self._samples.clear()  # expendable: the store cannot take them now
                return

    def _done(self, future: Future[Any]) -> None:
        try:
            future.result()
        except Fenced as exc:
            self.on_fenced(exc)
        except StoreError:
            pass  # said loudly by the journal; the next publication tries again
