"""`warroom page PLAN`: the status page served by uvicorn, from the store opened read-only."""

from __future__ import annotations

import sys

import uvicorn

from warroom.client import EngineClient
from warroom.core.identity import Actor
from warroom.core.text import terminal_safe
from warroom.page.app import make_app
from warroom.plan.page import Page, is_loopback, split_listen
from warroom.store import open_store
from warroom.store.paths import StateRef

READER = Actor(user="status-page")  # the page sends nothing; a client needs someone looking


def serve(rollout: str, state: StateRef, page: Page, *, listen: str, key: str | None) -> int:
    """Serve until interrupted; 0, or 1 when the address cannot be had."""
    host, port = split_listen(listen)
    if key is None and not is_loopback(host):
        print(f"warroom page: {listen} is not loopback: give the page a key (page.key, or WARROOM_PAGE_KEY) so every viewer "
              "needs a signed link", file=sys.stderr)
        return 2
    store = open_store(state, create=False, readonly=True)
    app = make_app(store, EngineClient(store, actor=READER, readonly=True), rollout, key=key, secure=page.tls is not None)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, server_header=False, date_header=False,
                            ssl_certfile=page.tls.cert if page.tls else None, ssl_keyfile=page.tls.key if page.tls else None,
                            timeout_graceful_shutdown=2)
    scheme = "https" if page.tls else "http"
    print(terminal_safe(f"status page of {rollout} on {scheme}://{listen}/ (read-only; " + ("signed links only)" if key else "loopback, no link needed)")),
          flush=True)
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        store.close()
    return 0 if server.started else 1
