"""Shared test helpers: real binaries, free ports."""

from __future__ import annotations

import os
import shutil
import socket
from typing import NoReturn

import pytest


def missing(message: str) -> NoReturn:
    """Something a test needs is not here (a binary, a server, the right to mount): a failure in
    CI, never a silent skip; a skip on a developer's machine."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_binary(name: str) -> str:
    """Path of a binary the test needs. Missing in CI is a failure, never a silent skip."""
    path = shutil.which(name)
    if path:
        return path
    missing(f"{name} is not installed (.ci/install-servers installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
