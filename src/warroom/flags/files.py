"""File-backed flag stores (`local`, `flagd`): one lock and one atomic, fsynced replace.

Several consoles and CLI verbs may write the same file at once, and a reader (flagd, a
sidecar watching the file) must never see a half-written one.

warroom writes only a file it owns: one that does not exist yet (it creates it), or one
it can read as a flag file. Anything else — `/etc/passwd` named by a typo, a directory,
someone's package.json — is refused before anything is created next to it (the lock
file `PATH.lock` included), with a message saying what to set instead.
"""

from __future__ import annotations

import array
import asyncio
import errno
import fcntl
import json
import os
import tempfile
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator

from warroom.core.flagstate import FlagState
from warroom.flags.base import FlagError, FlagProvider, Proof, Writable

FS_IOC_GETFLAGS = 0x80086601  # Linux: a file's attributes, as lsattr shows them
IMMUTABLE, APPEND_ONLY = 0x10, 0x20  # chattr +i, chattr +a


def _file_path(value: str) -> str:
    if not value.strip():
        raise ValueError("the flag file's path is empty; give a file, e.g. .warroom/flags.json")
    if value.endswith(("/", "\\")) or Path(value).name in ("", ".."):  # ".", "/", "..", "a/.."
        raise ValueError(f"{value!r} names a directory; give the flag file in it, e.g. {value.rstrip('/')}/flags.json")
    return value


# A `path:` key of a file-backed provider: a file, never empty or a directory.
FlagFilePath = Annotated[str, AfterValidator(_file_path)]


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
    """Write to a temp file beside `path`, fsync, rename over it, fsync the directory (OSError: the caller says why)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _attributes(path: Path) -> int:
    """A file's or folder's attributes (chattr); 0 where the file system has none or says nothing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return 0
    try:
        flags = array.array("l", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
        return flags[0]
    except OSError:
        return 0
    finally:
        os.close(fd)


def _locked_by_attribute(path: Path, what: str) -> str | None:
    attributes = _attributes(path)
    for flag, name, option in ((IMMUTABLE, "immutable", "i"), (APPEND_ONLY, "append-only", "a")):
        if attributes & flag:
            return f"{path} is {name} (chattr +{option}): {what}; `chattr -{option} {path}` (as root) lets warroom write"
    return None


def _folder_problem(folder: Path) -> str | None:
    """Why no file can be created or renamed in `folder` (the nearest existing one, when it does not exist yet)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    found = _locked_by_attribute(folder, "nothing can be created or replaced in it")
    if found:
        return found
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"{folder} is on a read-only file system: nothing can be created or replaced in it"
    except OSError:
        pass
    if not os.access(folder, os.W_OK | os.X_OK):
        st = folder.stat()
        return (f"{folder} is not writable by uid {os.geteuid()} (mode {st.st_mode & 0o7777:04o}, owner uid {st.st_uid}): "
                "warroom creates its replacement flag file and the lock file in it")
    return None


def write_problem(path: Path) -> str | None:
    """Why warroom cannot write the flag file `path` (atomically: a temp file in its folder renamed
    over it, under the lock file `PATH.lock`), in plain words with the whole path; None when it can.

    Asks the file system (attributes, a read-only mount, permissions) and then proves the folder by
    creating and removing a scratch file in it: the flag file itself is never touched.
    """
    problem = _folder_problem(path.parent)
    if problem is None and path.exists():
        problem = _locked_by_attribute(path, "warroom cannot replace it")
    lock = Path(str(path) + ".lock")
    if problem is None and lock.exists():
        problem = _locked_by_attribute(lock, "warroom cannot take its lock") if _attributes(lock) & IMMUTABLE else None
        if problem is None and not os.access(lock, os.W_OK):
            problem = f"{lock} (the flag file's lock) is not writable by uid {os.geteuid()}"
    if problem is None and path.parent.exists():
        try:
            fd, scratch = tempfile.mkstemp(prefix=f".{path.name}-check-", dir=path.parent)
        except OSError as exc:
            return f"{path.parent}: a file cannot be created in it ({exc.strerror or type(exc).__name__})"
        os.close(fd)
        os.unlink(scratch)
    return problem


def unwritten(path: Path, exc: OSError) -> FlagError:
    """A write that failed on the file system, as the plain cause with the whole path (never a raw OSError)."""
    cause = write_problem(path)
    if cause is None:
        where = exc.filename or path
        cause = f"{where}: {exc.strerror or os.strerror(exc.errno or errno.EIO)}"
    return FlagError(f"cannot write the flag file: {cause}")


class FileFlagProvider(FlagProvider):
    """A flag store that is one JSON file `{"flags": {name: entry}}`: every flag read from
    one parse per tick, every write a locked read-modify-write and an atomic replace.
    Subclasses say how an entry maps to a FlagState and back."""

    what: ClassVar[str]  # for messages: "flag store", "flagd flag definitions"
    shape_error: ClassVar[str]  # what the file should look like

    def __init__(self, config: Any, base_dir: Path):
        super().__init__(config, base_dir)
        self.path = resolve(config.path, base_dir)

    @abstractmethod
    def _state(self, name: str, entry: Any) -> FlagState | None:
        """The state an entry (None: absent) stands for; FlagError when it cannot be read."""

    @abstractmethod
    def _entry(self, old: dict[str, Any], state: FlagState) -> dict[str, Any]:
        """The entry to write for `state`, keeping what we do not manage from `old`."""

    def _load(self, fresh: bool = False) -> dict[str, Any]:
        data = load_json(self.path, self.what, fresh=fresh)
        if data is None:
            return {"flags": {}}
        if not isinstance(data, dict) or not isinstance(data.get("flags"), dict):
            raise FlagError(f"{self.path}: {self.shape_error}")
        return data

    def _refuse_foreign(self) -> None:
        """Raise unless the path is ours to write: absent (we create it) or a flag file we can read."""
        fix = "set flag_provider.path to the flag file (warroom creates it if it does not exist)"
        if self.path.is_dir():
            raise FlagError(f"{self.path} is a directory, not a flag file; {fix}")
        if self.path.exists() and not self.path.is_file():
            raise FlagError(f"{self.path} is not a regular file; {fix}")
        try:
            self._load(fresh=True)
        except FlagError as exc:
            raise FlagError(f"{exc.reason}: not a {self.what} file, so warroom will not write it nor put a lock "
                            f"beside it; {fix}") from None

    def _write_sync(self, name: str, state: FlagState) -> None:
        self._refuse_foreign()  # before the lock file is created beside it
        try:
            with locked(self.path):
                data = self._load(fresh=True)
                old = data["flags"].get(name)
                data["flags"][name] = self._entry(old if isinstance(old, dict) else {}, state)
                replace_json(self.path, data)
        except OSError as exc:  # the folder, the lock or the file: said with the whole path
            raise unwritten(self.path, exc) from None

    async def writable(self, names: list[str]) -> Writable:
        problem = await asyncio.to_thread(write_problem, self.path)
        if problem is not None:
            return Writable(Proof.NOT_WRITABLE, problem)
        return Writable(Proof.WRITABLE, f"{self.path.parent} takes new files and {self.path.name} can be replaced "
                                        "(attributes, mount and permissions checked; no flag changed)")

    async def read(self, name: str) -> FlagState | None:
        # The read-back of a write: the file itself, never the per-tick parse cache, whose
        # key (inode, mtime, size) a quick rewrite that reuses an inode could match.
        return self._state(name, self._load(fresh=True)["flags"].get(name))

    async def read_many(self, names: list[str]) -> dict[str, FlagState | None | FlagError]:
        try:
            flags = self._load()["flags"]  # one stat (and at most one parse) for every flag
        except FlagError as exc:
            return {name: exc for name in names}
        out: dict[str, FlagState | None | FlagError] = {}
        for name in names:
            try:
                out[name] = self._state(name, flags.get(name))
            except FlagError as exc:
                out[name] = exc
        return out

    async def write(self, name: str, state: FlagState) -> None:
        # fsync can take a while on a busy disk; keep the event loop free.
        await asyncio.to_thread(self._write_sync, name, state)
