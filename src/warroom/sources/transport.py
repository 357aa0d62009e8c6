"""HTTP plumbing for a blocking client (requests, under prometheus-api-client) run in threads.

Three guarantees the library does not give by itself:

- **A deadline on the whole request.** requests' timeout bounds each socket read, so a
  server that trickles its answer a byte a second keeps a call busy for minutes. Here a
  watchdog shuts the request's socket down when its deadline passes: the blocked read
  returns and the call fails as a timeout, freeing its worker thread.
- **Exit never waits for a worker.** `DaemonPool` runs calls in daemon threads that the
  interpreter does not join at exit (concurrent.futures' pool joins its threads, so one
  hung read held every verb for two minutes after it had printed its answer).
- **No credential crosses hosts.** A redirect to another origin (host, port or scheme)
  drops every credential header (Authorization, Cookie and each header whose value came
  from a secret reference), not only the Authorization requests strips itself.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

log = logging.getLogger(__name__)

# Sent by requests or by hand; a plan's headers that hold secret references come on top.
ALWAYS_CREDENTIALS = ("Authorization", "Proxy-Authorization", "Cookie")


# ---------------------------------------------------------------- daemon workers

class DaemonPool(Executor):
    """A thread pool whose workers are daemon threads: a hung call never delays exit."""

    def __init__(self, workers: int, name: str):
        self._queue: queue.SimpleQueue[tuple[Future, Callable[..., Any], tuple, dict] | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._max = workers
        self._name = name
        self._closed = False
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new calls after shutdown")
            future: Future = Future()
            self._queue.put((future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max:
                thread = threading.Thread(target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True)
                thread.start()
                self._threads.append(thread)
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.put(None)  # the next worker stops too
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # handed to whoever awaits the future
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del item, future, fn, args, kwargs
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            if cancel_futures:
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()


# ---------------------------------------------------------------- whole-request deadlines

class _Request:
    """One request (with its redirects): its deadline and the connections it used."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.expired = False
        self.finished = False  # answered (or failed) before its deadline: nothing to expire
        self.conns: list[_Watched] = []

    def attach(self, conn: _Watched) -> None:
        conn.owner = self
        if conn not in self.conns:
            self.conns.append(conn)
        if self.expired:
            conn.abort()

    def expire(self) -> None:
        self.expired = True
        for conn in self.conns:
            if conn.owner is self:  # a connection back in the pool may serve another request now
                conn.abort()


class _Watchdog:
    """One daemon thread that expires requests at their deadlines."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Request]] = []
        self._ids = itertools.count()  # ties in the heap never compare requests
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, request: _Request) -> None:
        with self._cond:
            heapq.heappush(self._heap, (request.deadline, next(self._ids), request))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-deadlines", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].finished:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, _, request = self._heap[0]
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
            if not request.finished:
                request.expire()


_watchdog = _Watchdog()
_current = threading.local()  # the request this thread is making, if any


class _Watched(HTTPConnection):
    """A urllib3 connection that registers with the thread's request (HTTPS: with HTTPSConnection
    after it in the bases); abortable."""

    owner: _Request | None = None

    def connect(self) -> None:
        self._watch()
        super().connect()
        self._watch()  # the socket exists now: a deadline that passed while connecting aborts it

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._watch()  # a kept-alive connection is reused without connecting again
        super().request(*args, **kwargs)

    def _watch(self) -> None:
        request = getattr(_current, "request", None)
        if request is not None:
            request.attach(self)

    def abort(self) -> None:
        """Make a read blocked on this connection return now (it then fails as a timeout)."""
        sock = self.sock
        if sock is None:
            return
        with contextlib.suppress(OSError):  # already closed: nothing is blocked on it
            sock.shutdown(socket.SHUT_RDWR)


class _WatchedHTTP(_Watched):
    pass


class _WatchedHTTPS(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTP


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPS


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """An adapter whose connections a request's deadline can abort."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools are their own classes: per-read timeouts only
            manager.pool_classes_by_scheme = _POOLS
        return manager


class DeadlineTimeout(requests.exceptions.Timeout):
    """The whole request (connect, headers, body, redirects) took longer than its deadline."""


class GuardedSession(requests.Session):
    """A requests session with a deadline on each whole request and no credentials across hosts.

    `deadline` is in seconds from the start of a request; `credentials` names the headers
    (beyond Authorization, Proxy-Authorization and Cookie) that must not follow a
    redirect to another origin.
    """

    def __init__(self, deadline: float, credentials: Iterable[str] = (), pool_size: int = 10):
        super().__init__()
        self.deadline = deadline
        self.credentials = (*ALWAYS_CREDENTIALS, *credentials)
        # No retries inside requests: the caller decides when to ask again.
        self.adapter = DeadlineAdapter(max_retries=0, pool_maxsize=pool_size)
        self.mount("http://", self.adapter)
        self.mount("https://", self.adapter)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if getattr(_current, "request", None) is not None:
            return super().send(request, **kwargs)  # a redirect: the first request's deadline holds
        current = _Request(time.monotonic() + self.deadline)
        _current.request = current
        _watchdog.watch(current)
        try:
            return super().send(request, **kwargs)
        except requests.exceptions.RequestException:
            if current.expired:
                raise DeadlineTimeout(f"no complete answer within {self.deadline:g}s (timed out)") from None
            raise
        finally:
            current.finished = True
            _current.request = None

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        super().rebuild_auth(prepared_request, response)  # strips Authorization across hosts
        headers, before = prepared_request.headers, response.request.headers
        if self.should_strip_auth(response.request.url or "", prepared_request.url or ""):
            dropped = [name for name in self.credentials if headers.pop(name, None) is not None]
            if dropped:
                log.info("redirect to another origin: not sending %s", ", ".join(dropped))
            return
        # The same origin keeps what the plan sends (requests drops a Cookie header on every redirect).
        for name in self.credentials:
            if name in before and name not in headers:
                headers[name] = before[name]
