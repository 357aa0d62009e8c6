"""The driving engine's local socket: what must reach it without a disk write.

The driving engine listens on an abstract unix socket of its host (core/local_wire.py), where
the kernel proves who connects — SO_PEERCRED's uid and pid, and the login session's uid —
never as declared. On a SQLite state, whose rows anyone who may write the file can write
under any name, every command of a client on this host comes this way: the engine queues it
in the store for the person the kernel named, remembered by the command loop, and runs it as
any other (`queue`). A full disk stops the store taking commands and the engine renewing its
heartbeat, while the engine keeps guarding from memory; a client would then see no engine
and nowhere to send a rollback: a rollback or a pause sent here then runs at once, journaled
(held in memory until the store takes writes again) as the kernel names its sender; a ping
answers with what the engine sees. Who may: the engine's own user, root, and a user the state file's
permissions let write it (the same people who could send the command through the store).

A frozen engine holds its socket without answering: clients bound their wait (local_client.py).
Another process of this host may hold the address (an old driver, frozen and taken over):
this one tries again every heartbeat until it gets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import socket
import stat
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warroom.core.identity import Actor, from_kernel
from warroom.core.journal_kinds import Kind
from warroom.core.local_wire import COMMANDS, LINE_LIMIT, SIGN_OFFS, UNSET_LOGINUID, LocalVerb, Peer, address, decode, encode
from warroom.engine.commands import CommandLoop, dispatch
from warroom.engine.executor import CommandError
from warroom.engine.lease import HEARTBEAT
from warroom.store.base import Fenced, StoreError, StoreUnwritable, hostname

if TYPE_CHECKING:
    from warroom.engine.engine import Engine

log = logging.getLogger(__name__)

READ_WAIT = 5.0  # seconds a client gets to send its request once connected


def peer_of(sock: socket.socket) -> Peer:
    """The process at the other end of a unix socket, as the kernel tells it."""
    pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = f"uid{uid}"
    try:
        loginuid: int | None = int(Path(f"/proc/{pid}/loginuid").read_text().strip())
    except (OSError, ValueError):
        loginuid = None
    return Peer(uid, pid, gid, user, None if loginuid == UNSET_LOGINUID else loginuid)


def refusal(peer: Peer, state_ref: str) -> str:
    """Why `peer` may not act on this engine ("" when it may): its own user and root may, and
    anyone the state file's permissions let write it; on a database, only those two."""
    if peer.uid in (0, os.getuid()):
        return ""
    try:
        info = os.stat(state_ref)
    except OSError:
        return f"{peer.label()} is neither this engine's user nor root"
    try:
        groups = os.getgrouplist(peer.user, peer.gid)
    except OSError:
        groups = [peer.gid]
    bit = stat.S_IWUSR if peer.uid == info.st_uid else stat.S_IWGRP if info.st_gid in groups else stat.S_IWOTH
    return "" if info.st_mode & bit else f"{peer.label()} may not write the state file {state_ref}, so may not command its engine"


class LocalSocket:
    def __init__(self, engine: Engine, commands: CommandLoop):
        self.engine = engine
        self.commands = commands  # where a command queued for a proven sender is remembered as theirs
        self.ref = engine.store.ref

    async def serve(self, stop: asyncio.Event) -> None:
        """Listen while this engine drives (until `stop`)."""
        told = False
        while not stop.is_set():
            try:
                listening = self._bind()
                break
            except OSError as exc:
                if not told:
                    log.warning("the local socket is held by another process of this host (%s); trying again every %gs", exc, HEARTBEAT)
                    told = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), HEARTBEAT)
        else:
            return
        server = await asyncio.start_unix_server(self._answer, sock=listening, limit=LINE_LIMIT)
        try:
            await stop.wait()
        finally:
            server.close()

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(address(self.ref, hostname()))
            sock.listen(16)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer = peer_of(writer.get_extra_info("socket"))
            request = decode(await asyncio.wait_for(reader.readline(), READ_WAIT))
            verb = LocalVerb(request.get("verb"))
            why = refusal(peer, self.ref)
            if why:
                writer.write(encode({"status": "refused", "message": why}))
            elif verb == LocalVerb.PING:
                writer.write(encode(self._ping()))
            elif verb == LocalVerb.QUEUE:
                await self._queue(request, peer, reader, writer)
            else:
                await self._command(verb, request, peer, writer)
            await writer.drain()
        except (OSError, ValueError, TimeoutError, asyncio.LimitOverrunError, asyncio.IncompleteReadError):
            pass  # a client that went, or spoke nonsense: nothing to answer
        finally:
            writer.close()

    def _ping(self) -> dict[str, Any]:
        engine = self.engine
        body = engine.snapshot.to_json() if engine.snapshot is not None else None
        if body is not None:
            body.pop("journal")
        return {"holder": engine.holder, "epoch": engine.lease.epoch, "unrenewed": engine.lease.unrenewed, "snapshot": body}

    @staticmethod
    def _sender(request: dict[str, Any], peer: Peer) -> tuple[Actor, Actor]:
        """(as the client declares itself, as the kernel proves it): the person by login uid (else uid), this
        host, with the proof; what the client says of its SSH session and tty is kept as context."""
        declared = Actor.from_json(request.get("actor") or {})
        return declared, from_kernel(Actor(declared.user, hostname(), declared.ssh_client, declared.tty), peer.uid, peer.loginuid)

    async def _queue(self, request: dict[str, Any], peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Queue a command in the store for its sender as proven; only once the client says go (it queues it
        itself when this engine is too slow to say ready: never both)."""
        _, actor = self._sender(request, peer)
        verb = str(request.get("command") or "")
        asked = request.get("args")
        args: dict[str, Any] = asked if isinstance(asked, dict) else {}
        writer.write(encode({"ready": True}))
        await writer.drain()
        if not decode(await asyncio.wait_for(reader.readline(), READ_WAIT)).get("go"):
            return
        try:
            command_id = await self.engine.store_thread.call(lambda store: self.commands.queue_for(store, verb, args, actor))
        except StoreUnwritable as exc:  # a full disk: the client then sends a way back here to run at once
            writer.write(encode({"unwritable": str(exc)}))
        except StoreError as exc:  # too large, or the store failed: said as the store says it
            writer.write(encode({"status": "refused", "message": str(exc)}))
        else:
            writer.write(encode({"queued": command_id}))

    async def _command(self, verb: LocalVerb, request: dict[str, Any], peer: Peer, writer: asyncio.StreamWriter) -> None:
        assert verb in COMMANDS or verb in SIGN_OFFS
        declared, actor = self._sender(request, peer)
        asked = request.get("args")
        args: dict[str, Any] = asked if isinstance(asked, dict) else {}
        why = str(request.get("why") or "")
        self.engine.journal.entry(
            Kind.COMMAND_LOCAL, f"{verb.value} by {peer.label()} over the engine's local socket" + (f": {why}" if why else ""), actor,
            {"verb": verb.value, "args": args, "peer": peer.to_json(), "declared": declared.to_json(), "why": why})
        writer.write(encode({"accepted": True}))
        await writer.drain()
        running = asyncio.ensure_future(dispatch(self.engine, verb.value, args, actor))
        while not running.done():  # a line a second: the client tells a slow rollback from a frozen engine
            await asyncio.wait({running}, timeout=HEARTBEAT)
            if not running.done():
                writer.write(encode({"waiting": True}))
                await writer.drain()
        try:
            outcome = {"status": "done", "message": running.result()}
        except CommandError as exc:
            outcome = {"status": "refused", "message": str(exc)}
        except Fenced as exc:
            self.engine.on_fenced(exc)
            outcome = {"status": "failed", "message": "this engine was taken over meanwhile: the one that drives now finishes it"}
        except Exception as exc:  # a bug must not leave the client waiting for ever
            log.exception("a %s over the local socket failed", verb.value)
            outcome = {"status": "failed", "message": f"{type(exc).__name__}: {exc}"}
        writer.write(encode(outcome))
