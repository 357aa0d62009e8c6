"""YAML files (plans, fault schedules, scenarios) read safely, with the line of every key.

A plan path can be anything a user types: `/dev/zero`, a FIFO, a folder, a log file of
gigabytes, or YAML whose aliases expand a few hundred bytes into billions of values.
Each is refused with a message naming the file, never read until memory runs out, and
an error never quotes what such a file holds.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20  # sample-config.yaml is 10 kB; a megabyte of YAML is not a plan
MAX_VALUES = 50_000  # values after aliases are expanded; the sample plan has ≈ 700


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class PlanError(Exception):
    """One or more problems in a plan (or a file it names), each with file, line and field."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def file_problem(path: str | Path, message: str) -> PlanError:
    return PlanError([Problem(str(path), 1, 1, "", message)])


def read_text(path: Path, what: str) -> str:
    """The text of a YAML file: a regular file of at most MAX_BYTES of UTF-8, or a PlanError."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before we can refuse it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise file_problem(path, "no such file") from None
    except OSError as exc:
        raise file_problem(path, f"cannot read the {what}: {exc.strerror or type(exc).__name__}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise file_problem(path, f"not a regular file (a folder, device or pipe): give the path of the {what}'s YAML file")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(MAX_BYTES + 1)  # never more, whatever the size claims (/proc files say 0)
        except OSError as exc:
            raise file_problem(path, f"cannot read the {what}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > MAX_BYTES:
        raise file_problem(path, f"larger than {MAX_BYTES >> 20} MB: not a {what} (is this the right file?)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise file_problem(path, f"not UTF-8 text: not a {what} (is this the right file?)") from None


Loc = tuple[Any, ...]

_LOADER = yaml.SafeLoader("")
# libyaml's parser gives the same nodes with the same marks, ~10× faster than the pure-Python
# one (sample-config.yaml: 25 → 2.5 ms of every start); PyYAML without libyaml falls back.
_PARSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TooBig(Exception):
    pass


class Located:
    """Plain Python data from YAML plus the line/column of every key and value."""

    def __init__(self, file: str):
        self.file = file
        self.marks: dict[Loc, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self._values = 0
        self._open: set[int] = set()  # nodes being converted: an alias inside itself is a cycle

    def convert(self, node: yaml.Node, loc: Loc) -> Any:
        # An alias is the same node again: every use is converted (and counted) anew, so a
        # document that expands past MAX_VALUES stops here, not after the memory is gone.
        self._values += 1
        if self._values > MAX_VALUES:
            raise _TooBig()
        if id(node) in self._open:
            raise RecursionError()
        self.marks.setdefault(loc, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            self._open.add(id(node))
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self._problem(key_node, loc, "a key must be a plain word")
                    continue
                key = yaml.SafeLoader.construct_scalar(_LOADER, key_node)
                if key == "<<":
                    self._problem(key_node, loc, "merge keys (<<) are not supported; write the keys out")
                    continue
                if key in out:
                    self._problem(key_node, loc + (key,), "this key appears twice in the same mapping")
                    continue
                self.marks[loc + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = self.convert(value_node, loc + (key,))
            self._open.discard(id(node))
            return out
        if isinstance(node, yaml.SequenceNode):
            self._open.add(id(node))
            items = [self.convert(child, loc + (i,)) for i, child in enumerate(node.value)]
            self._open.discard(id(node))
            return items
        return _LOADER.construct_object(node, deep=True)

    def _problem(self, node: yaml.Node, loc: Loc, message: str) -> None:
        self.problems.append(
            Problem(self.file, node.start_mark.line + 1, node.start_mark.column + 1, dotted(loc), message)
        )

    def where(self, loc: Loc) -> tuple[int, int]:
        loc = tuple(loc)
        while loc:
            if loc in self.marks:
                return self.marks[loc]
            loc = loc[:-1]
        return self.marks.get((), (1, 1))


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def compose(text: str, file: str) -> tuple[Any, Located]:
    """YAML text to plain data with the location of every key; None for an empty document."""
    located = Located(file)
    try:
        node = yaml.compose(text, Loader=_PARSER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise PlanError([Problem(file, line, col, "", f"not valid YAML: {exc.problem or exc.context}")]) from None
    except yaml.YAMLError as exc:
        raise PlanError([Problem(file, 1, 1, "", f"not valid YAML: {exc}")]) from None
    except (ValueError, RecursionError) as exc:
        raise PlanError([Problem(file, 1, 1, "", f"not valid YAML: {type(exc).__name__}")]) from None
    if node is None:
        return None, located
    line, col = (node.start_mark.line + 1, node.start_mark.column + 1)
    try:
        data = located.convert(node, ())
    except _TooBig:
        raise PlanError([Problem(file, line, col, "", f"more than {MAX_VALUES:,} values once its aliases (*name) are expanded; "
                                                      "write the values out instead of nesting aliases")]) from None
    except RecursionError:
        raise PlanError([Problem(file, line, col, "", "nested too deeply, or an alias (*name) inside the value it names")]) from None
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        raise PlanError([Problem(file, line, col, "", f"unsupported YAML value: {type(exc).__name__}")]) from None
    if located.problems:
        raise PlanError(located.problems)
    return data, located
