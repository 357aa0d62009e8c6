"""URLs in a plan hold no credentials: a password in one would be printed, logged and journaled with it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from pydantic_core import PydanticCustomError

# The error type of a refusal whose input holds a secret: its message never quotes the input.
SECRET_VALUE = "secret_value"


def refuse_password(advice: str) -> Callable[[Any], Any]:
    """A before-validator refusing a URL with a password in it (`https://user:pass@host`), saying where it goes."""

    def check(value: Any) -> Any:
        if isinstance(value, str):
            try:
                password = urlsplit(value.strip()).password
            except ValueError:
                return value  # not a URL at all: the field's own pattern says so
            if password is not None:
                raise PydanticCustomError(SECRET_VALUE, "the URL holds a password: " + advice)
        return value

    return check
