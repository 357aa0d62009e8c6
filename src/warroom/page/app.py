"""The status page's web app: two routes that read the store, none that writes.

`GET /` is the page (plain HTML that reloads itself without JavaScript); `GET /events` is a
server-sent event stream of the page's live part, for the page's one small script. Every
other path is 404, every other method 405; no file is ever served from disk, so no path
can reach one.

One reader feeds every viewer: a single task waits on the store's change waiter (the one
consoles use), composes the snapshot as a client does, and renders the page once per
change (and once a second, so the engine's liveness and the numbers' age stay true);
viewers get that rendering. Two hundred viewers cost the store what one does, and no
viewer ever reaches a metric source or a flag API: this package cannot import them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from warroom.client import EngineClient
from warroom.core.secrets import redact
from warroom.core.text import terminal_safe
from warroom.page import access
from warroom.page.view import CHART_H, CHART_W, PageView, page_view, utc
from warroom.store.base import Store, StoreError

LOOK_EVERY = 1.0  # seconds: the page is judged again this often with no change (an engine dies without a word)
REFRESH_S = 15  # seconds between reloads of the no-script page
# The page's one script: live updates by server-sent events (an EventSource reconnects by itself).
SCRIPT = ('(function(){var live=document.getElementById("live"),root=document.documentElement;'
          'if(!window.EventSource)return;var es=new EventSource("events");'
          'es.addEventListener("page",function(e){live.innerHTML=e.data;root.setAttribute("data-live","on");});'
          'es.onerror=function(){root.setAttribute("data-live","lost");};})();')
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
HEADERS = {
    # Only our own inline style and script run: markup that slipped through could not load or run anything.
    "Content-Security-Policy": f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{_SCRIPT_HASH}'; "
                               "connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # a link's token never leaves in a Referer header
    "X-Content-Type-Options": "nosniff",
}
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


def public(value: object) -> object:
    """Every value the page prints: no control characters, no secret, and no internal address (a server's
    error may name the Prometheus or flag service it came from); escaping is autoescape's."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return _URL.sub("[internal address]", redact(terminal_safe(value, keep_newlines=True)))
    return value


_ENV = Environment(loader=PackageLoader("warroom.page", "templates"), autoescape=True, finalize=public,
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class Rendered:
    page: str  # the whole page
    live: str  # its live part, for the event stream
    at: float


class Reader:
    """The one reader of the store: renders the page on each change and hands it to every viewer."""

    def __init__(self, client: EngineClient):
        self.client = client
        self.rendered = Rendered(self._unavailable("starting"), "", time.time())
        self.version = 0
        self._changed = asyncio.Condition()

    def _unavailable(self, why: str) -> str:
        return f"<!DOCTYPE html><meta charset=utf-8><title>status page</title><p>No status yet: {public(why)}.</p>"

    def read(self) -> PageView | None:
        snap = self.client.snapshot()
        if snap is None:
            return None
        published = [u for u in self.client.store.updates(limit=5) if u.published is not None]
        return page_view(snap, published[0] if published else None, refresh_s=REFRESH_S)

    def render(self, view: PageView) -> Rendered:
        updates = view.updates
        context = {"v": view, "w": CHART_W, "h": CHART_H, "script": Markup(SCRIPT),
                   "due": utc(updates.due) if updates is not None and updates.due is not None else "",
                   "published_update": utc(view.last_update.published) if view.last_update and view.last_update.published else ""}
        return Rendered(_ENV.get_template("page.html.j2").render(context), _ENV.get_template("live.html.j2").render(context), time.time())

    def read_and_render(self) -> Rendered:
        try:
            view = self.read()
        except StoreError as exc:
            return Rendered(self._unavailable(f"the store cannot be read ({exc})"), "", time.time())
        return self.render(view) if view is not None else Rendered(self._unavailable("the engine has not published yet"), "", time.time())

    async def refresh(self) -> None:
        # Reading and rendering off the event loop: viewers are answered meanwhile.
        rendered = await asyncio.to_thread(self.read_and_render)
        async with self._changed:
            if rendered.live != self.rendered.live or rendered.page != self.rendered.page:
                self.rendered = rendered
                self.version += 1
                self._changed.notify_all()

    async def run(self) -> None:
        waiter = self.client.watch()
        try:
            while True:
                await self.refresh()
                await waiter.changed(LOOK_EVERY)
        finally:
            waiter.close()

    async def next(self, seen: int) -> tuple[int, Rendered]:
        """The rendering after version `seen` (at once when there is a newer one)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.version > seen)
            return self.version, self.rendered


def _events(reader: Reader, request: Request) -> AsyncIterator[str]:
    async def stream() -> AsyncIterator[str]:
        seen = 0
        while not await request.is_disconnected():
            with contextlib.suppress(TimeoutError):
                seen, rendered = await asyncio.wait_for(reader.next(seen), 15.0)
                yield "event: page\n" + "".join(f"data: {line}\n" for line in rendered.live.splitlines()) + "\n"
                continue
            yield ": still here\n\n"  # a comment line keeps proxies from closing an idle stream
    return stream()


def make_app(store: Store, client: EngineClient, rollout: str, *, key: str | None, secure: bool = False,
             clock: Callable[[], float] = time.time) -> Starlette:
    """The page of `rollout` from `store` (opened read-only). With `key`, every request needs a valid
    signed link (or the cookie its first visit left); without one, the server listens on loopback only."""
    reader = Reader(client)

    def refused(request: Request) -> Response | None:
        if key is None:
            return None
        verdict = access.judge(request.cookies.get(access.COOKIE), key, rollout, clock())
        if verdict is access.Verdict.OK:
            return None
        return PlainTextResponse(f"401: {verdict.value}\n", status_code=401, headers=HEADERS)

    async def page(request: Request) -> Response:
        token = request.query_params.get("t")
        if token is not None and key is not None:
            verdict = access.judge(token, key, rollout, clock())
            if verdict is not access.Verdict.OK:
                return PlainTextResponse(f"401: {verdict.value}\n", status_code=401, headers=HEADERS)
            # Into a cookie, and away from the address bar: the page itself never holds the token.
            response: Response = RedirectResponse("./", status_code=303, headers=HEADERS)
            response.set_cookie(access.COOKIE, token, max_age=max(1, int(token.partition(".")[0]) - int(clock())), httponly=True,
                                samesite="strict", secure=secure, path="/")
            return response
        return refused(request) or HTMLResponse(reader.rendered.page, headers=HEADERS)

    async def events(request: Request) -> Response:
        return refused(request) or StreamingResponse(_events(reader, request), media_type="text/event-stream",
                                                     headers={**HEADERS, "X-Accel-Buffering": "no"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await reader.refresh()
        task = asyncio.ensure_future(reader.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return Starlette(routes=[Route("/", page, methods=["GET"]), Route("/events", events, methods=["GET"])], lifespan=lifespan)
