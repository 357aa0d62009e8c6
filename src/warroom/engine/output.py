"""Where the engine's lines go — its log file always, its terminal while there is one — without
ever blocking the engine.

A terminal nobody reads (a tmux client suspended, a stalled SSH session, flow control) takes
nothing more and a write to it blocks; so may a log on a hung disk. Each destination therefore
has a writer thread fed by a bounded queue: a destination that stops taking lines stops only
its own thread, the lines that do not fit are dropped and counted, and the destination is told
how many once it takes lines again. A write that fails (a full disk, a terminal gone with its
SSH session) never reaches the engine either.

Every line is outside text as much as warroom's own (a host or user name, a plan's words): it
leaves here without control characters or escape sequences (core/text.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import TextIO

from warroom.core.lines import stamp
from warroom.core.text import terminal_safe

BACKLOG = 1000  # lines a destination may fall behind before lines are dropped (minutes of a busy launch)
CLOSE_WAIT = 2.0  # seconds a stop waits for a destination to take its last lines


class Destination:
    """One place lines go: a bounded queue and the thread that writes it out."""

    def __init__(self, name: str, *, fd: int | None = None, stream: TextIO | None = None, backlog: int = BACKLOG):
        self.name = name
        self.fd = fd  # written with os.write: no buffer (and no lock) of Python's to block on at exit
        self.stream = stream  # an in-memory stream (a drill's output in a test): it cannot block
        self.lines: queue.Queue[str | None] = queue.Queue(backlog)
        self.dropped = 0
        self.broken = False
        self._count = threading.Lock()
        self.thread: threading.Thread | None = None
        if fd is not None:
            self.thread = threading.Thread(target=self._write_out, name=f"warroom-output-{name}", daemon=True)
            self.thread.start()

    def put(self, line: str) -> None:
        """Hand a line over; never waits. A full queue drops it (counted)."""
        if self.broken:
            return
        if self.stream is not None:
            self._write(line + "\n")
            return
        try:
            self.lines.put_nowait(line)
        except queue.Full:
            with self._count:
                self.dropped += 1

    def _write_out(self) -> None:
        while True:
            line = self.lines.get()
            if line is None:
                return
            with self._count:
                dropped, self.dropped = self.dropped, 0
            if dropped:
                self._write(f"{stamp(time.time())} {'engine':<18} {dropped} line(s) dropped here: this output was not "
                            "read for a while (the log file has them)\n" if self.name == "terminal" else
                            f"{stamp(time.time())} {'engine':<18} {dropped} line(s) dropped here: this file took no writes for a while\n")
            self._write(line + "\n")

    def _write(self, text: str) -> None:
        try:
            if self.stream is not None:
                self.stream.write(text)
                self.stream.flush()
                return
            data = text.encode("utf-8", "replace")
            while data:
                data = data[os.write(self.fd, data):]  # type: ignore[arg-type]
        except (OSError, ValueError):
            if self.name == "terminal":
                self.broken = True  # the terminal is gone (SSH dropped): the log file goes on
            # a full disk: the line is lost, the engine goes on guarding

    def close(self) -> None:
        """Let the lines queued so far go out (a bounded wait), then let go of the destination."""
        if self.thread is not None:
            with contextlib.suppress(queue.Full):  # it takes nothing: its thread is left behind (a daemon), the engine leaves anyway
                self.lines.put_nowait(None)
            self.thread.join(CLOSE_WAIT)
        if self.fd is not None and (self.thread is None or not self.thread.is_alive()):
            with contextlib.suppress(OSError):
                os.close(self.fd)


class Output(logging.Handler):
    """Every line the engine says: into its log file always, onto the terminal while there is one."""

    def __init__(self, log_path: Path | None, terminal: TextIO | None, *, backlog: int = BACKLOG):
        super().__init__()
        self.destinations: list[Destination] = []
        if log_path is not None:
            try:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                self.destinations.append(Destination("log", fd=os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
                                                     backlog=backlog))
            except OSError:
                pass  # no log file (a full disk, no rights): the terminal still hears it
        # `warroom up` points the engine's stdout at its log file: one copy of each line is enough.
        if terminal is not None and not self._same_file(terminal, log_path):
            try:
                self.destinations.append(Destination("terminal", fd=os.dup(terminal.fileno()), backlog=backlog))
            except (OSError, ValueError, AttributeError):
                self.destinations.append(Destination("terminal", stream=terminal))  # in memory: no descriptor

    @staticmethod
    def _same_file(stream: TextIO, path: Path | None) -> bool:
        if path is None:
            return False
        try:
            mine, theirs = os.fstat(stream.fileno()), os.stat(path)
        except (OSError, ValueError, AttributeError):
            return False
        return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)

    def line(self, text: str) -> None:
        clean = terminal_safe(text)
        for destination in self.destinations:
            destination.put(clean)

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{stamp(record.created)} {'engine':<18} {record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info:
            # A traceback keeps its lines, each indented: outside text in it cannot forge a line of its own.
            trace = terminal_safe(logging.Formatter().formatException(record.exc_info), keep_newlines=True)
            line = terminal_safe(line) + "".join(f"\n    {part}" for part in trace.splitlines())
            for destination in self.destinations:
                destination.put(line)
            return
        self.line(line)

    def close(self) -> None:
        for destination in self.destinations:
            destination.close()
        super().close()
