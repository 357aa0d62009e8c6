"""A TCP proxy on 127.0.0.1 in front of the real PostgreSQL that can lose a COMMIT's answer.

It forwards bytes both ways. Told to, it waits for a transaction that sent a given text (say
`INSERT INTO warroom.actions`) and, the moment the server answers that transaction's COMMIT,
drops both connections instead of passing the answer on: the server has committed, the client
never hears it (an ambiguous commit, as a network cut at the worst moment makes one). After that
one cut it forwards again, and new connections pass.

Plain text only: the client must not ask for TLS (`sslmode=disable`), or nothing can be read.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

# The server's CommandComplete of a COMMIT ('C', length 11, "COMMIT\0"): sent once the transaction is committed.
COMMIT_DONE = b"C\x00\x00\x00\x0bCOMMIT\x00"


class _Pair:
    """One client's connection and the proxy's to the server."""

    def __init__(self, client: socket.socket, server: socket.socket):
        self.client, self.server = client, server
        self.marked = False  # this connection's transaction sent the text the cut waits for

    def drop(self) -> None:
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class CommitCutter:
    def __init__(self, server_port: int, server_host: str = "127.0.0.1"):
        self.target = (server_host, server_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cuts = 0  # COMMIT answers lost so far
        self._marker: bytes | None = None  # armed: the text a transaction must send to have its COMMIT's answer lost
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: str) -> str:
        """`url` (postgresql://user@host:port/db) through this proxy, in plain text."""
        parts = urlsplit(url)
        netloc = f"{parts.username}@127.0.0.1:{self.port}" if parts.username else f"127.0.0.1:{self.port}"
        query = "&".join(q for q in (parts.query, "sslmode=disable&gssencmode=disable") if q)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))

    def cut_commit_of(self, marker: bytes) -> None:
        """Lose the answer to the COMMIT of the next transaction that sends `marker` (once)."""
        with self._lock:
            self._marker = marker
            for pair in self._pairs:
                pair.marked = False

    def close(self) -> None:
        self.listener.close()
        with self._lock:
            for pair in self._pairs:
                pair.drop()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            pair = _Pair(client, server)
            with self._lock:
                self._pairs.append(pair)
            threading.Thread(target=self._to_server, args=(pair,), daemon=True).start()
            threading.Thread(target=self._to_client, args=(pair,), daemon=True).start()

    def _to_server(self, pair: _Pair) -> None:
        tail = b""
        while chunk := _recv(pair.client):
            with self._lock:
                if self._marker is not None and self._marker in tail + chunk:
                    pair.marked = True
                tail = chunk[-len(self._marker or b"") + 1:] if self._marker else b""
            if not _send(pair.server, chunk):
                break
        pair.drop()

    def _to_client(self, pair: _Pair) -> None:
        tail = b""
        while chunk := _recv(pair.server):
            with self._lock:
                if pair.marked and COMMIT_DONE in tail + chunk:
                    self._marker, pair.marked = None, False
                    self.cuts += 1
                    pair.drop()
                    return
                tail = chunk[-len(COMMIT_DONE) + 1:]
            if not _send(pair.client, chunk):
                break
        pair.drop()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False
