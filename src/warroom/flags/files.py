"""File-backed flag stores (`local`, `flagd`): one lock and one atomic, fsynced replace.

Several consoles and CLI verbs may write the same file at once, and a reader (flagd, a
sidecar watching the file) must never see a half-written one.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from .base import FlagError


def resolve(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(base_dir) / p


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write on `path` across processes (a sidecar .lock file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# path -> ((inode, mtime_ns, size), parsed): a console reads every flag every tick, and a
# file-backed store with 100 flags must not be parsed 100 times per tick. Sound because
# every write replaces the file by rename (a new inode).
_cache: dict[Path, tuple[tuple[int, int, int], Any]] = {}


def load_json(path: Path, what: str, *, fresh: bool = False) -> Any:
    """The parsed file (shared: do not mutate unless `fresh`), or None when it does not exist yet.

    `fresh` bypasses the cache and returns a private copy, for read-modify-write under the lock.
    """
    try:
        st = path.stat()
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = _cache.get(path)
        if not fresh and cached is not None and cached[0] == key:
            return cached[1]
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise FlagError(f"{path}: unreadable {what} ({type(exc).__name__})") from None
    if not fresh:
        _cache[path] = (key, data)
    return data


def replace_json(path: Path, data: Any) -> None:
    """Write to a temp file beside `path`, fsync, rename over it, fsync the directory."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise FlagError(f"{path}: write failed ({exc.strerror or type(exc).__name__})") from None
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def state_or_error(parse: Callable[[str, Any], Any], name: str, entry: Any) -> Any:
    """One flag's parsed state, or its FlagError as a value (for read_many)."""
    try:
        return parse(name, entry)
    except FlagError as exc:
        return exc
