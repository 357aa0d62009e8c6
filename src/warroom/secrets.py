"""Secret references (`env:NAME`, `keyring:service/username`) and redaction.

A plan never holds a secret value, only a reference. Every value we resolve is
remembered so that `redact()` can scrub it from anything headed for a log, the
journal, a report or an error message.
"""

from __future__ import annotations

import os
import re
import threading

REF_PATTERN = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|keyring:[^/\s]+/[^\s]+)$")
REF_HELP = "a secret reference: env:NAME or keyring:service/username (never the secret itself)"
MASK = "***"

_known: set[str] = set()
_lock = threading.Lock()


class SecretError(Exception):
    """A reference that cannot be resolved; the message never contains a secret."""


def is_reference(text: str) -> bool:
    return bool(REF_PATTERN.match(text))


def remember(value: str) -> None:
    """Register a value that must never be printed (also used for URLs that embed tokens)."""
    # Very short values would redact innocent text everywhere; they are not real secrets.
    if value and len(value) >= 4:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    return text


def _keyring_backend_help() -> str:
    return (
        "no usable keyring backend on this machine (common on a headless bastion). "
        "Use an environment variable instead (env:NAME), or install a file backend "
        "(pip install keyrings.alt and set PYTHON_KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring)"
    )


def _split_keyring(ref: str) -> tuple[str, str]:
    service, _, username = ref[len("keyring:"):].partition("/")
    return service, username


def _keyring(ref: str, operation: str, *args: str) -> str | None:
    """Call keyring's get/set/delete_password for a keyring: reference, with errors that say what to do."""
    if not ref.startswith("keyring:") or not is_reference(ref):
        raise SecretError(f"{ref!r} is not a keyring:service/username reference; env: ones are set in the shell")
    import keyring
    from keyring.errors import KeyringError, NoKeyringError, PasswordDeleteError

    service, username = _split_keyring(ref)
    try:
        return getattr(keyring, operation)(service, username, *args)
    except PasswordDeleteError:
        raise SecretError(f"{ref}: no such entry in the keyring") from None
    except NoKeyringError:
        raise SecretError(f"{ref}: {_keyring_backend_help()}") from None
    except KeyringError as exc:
        raise SecretError(f"{ref}: keyring failed ({type(exc).__name__})") from None


def resolve(ref: str) -> str:
    """Return the secret a reference points at, registering it for redaction."""
    if not is_reference(ref):
        raise SecretError(f"not {REF_HELP}")
    if ref.startswith("env:"):
        name = ref[4:]
        value = os.environ.get(name)
        if value is None:
            raise SecretError(f"environment variable {name} is not set (referenced as {ref}); export it before starting warroom")
    else:
        value = _keyring(ref, "get_password")
        if value is None:
            raise SecretError(f"{ref}: no such entry in the keyring; store it with `warroom secret set {ref}`")
    remember(value)
    return value


def masked(value: str) -> str:
    """What may be shown of a secret: that it is there and how long it is, nothing of it."""
    return f"{MASK} ({len(value)} characters)"


def store(ref: str, value: str) -> None:
    _keyring(ref, "set_password", value)


def delete(ref: str) -> None:
    _keyring(ref, "delete_password")
