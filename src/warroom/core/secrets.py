"""Secret references (`env:NAME`, `keyring:service/username`) and redaction.

A plan never holds a secret value, only a reference. Every value we resolve is
remembered so that `redact()` can scrub it from anything headed for a log, the
journal, a report or an error message — in the encodings it travels in too: a server
that echoes a request shows the password as the base64 of basic auth, a URL-encoded
query value or a JSON-escaped string, and a webhook receiver shows its secret path.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

REF_PATTERN = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|keyring:[^/\s]+/[^\s]+)$")
REF_HELP = "a secret reference: env:NAME or keyring:service/username (never the secret itself)"
MASK = "***"

_known: set[str] = set()
_lock = threading.Lock()


class SecretError(Exception):
    """A reference that cannot be resolved; the message never contains a secret."""


def is_reference(text: str) -> bool:
    return bool(REF_PATTERN.match(text))


# Very short values would redact innocent text everywhere; they are not real secrets.
MIN_SECRET = 4
# Outside text (a server's error body, a command's output) is stored at most this long.
EXCERPT_LIMIT = 300


def _encodings(value: str) -> set[str]:
    """The forms a value takes on the wire and in echoes of it."""
    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    return {f for f in forms if len(f) >= MIN_SECRET}


def remember(value: str) -> None:
    """Register a value that must never be printed, with its URL-encoded and JSON-escaped forms."""
    if value and len(value) >= MIN_SECRET:
        with _lock:
            _known.update(_encodings(value))


def remember_basic(username: str, password: str) -> None:
    """Register what HTTP basic auth sends: `Basic <base64(user:pass)>`, as requests and httpx encode it."""
    remember(password)
    for charset in ("latin-1", "utf-8"):
        try:
            token = base64.b64encode(f"{username}:{password}".encode(charset)).decode("ascii")
        except UnicodeEncodeError:
            continue
        remember(token)
        remember(token.rstrip("="))  # echoes and logs often drop the padding


def _distinctive(part: str) -> bool:
    """A part of a secret URL that is the secret (a token, an id), not a word such as `hooks` or `runbook`."""
    if len(part) < 6:
        return False
    return len(part) >= 16 or any(c.isdigit() for c in part) or any(c.isupper() for c in part[1:])


_SECRET_PARAM = re.compile(r"token|key|sig|secret|pass|auth|code|hash", re.IGNORECASE)


def remember_url(url: str) -> None:
    """Register a secret URL and each distinctive part of it.

    A receiver answering an error often quotes its request path or query: the whole URL
    is not in that text, its secret part is. Registered: the URL, the path (with the
    query), every distinctive path segment, query value and fragment, and the userinfo.
    """
    remember(url)
    try:
        parts = urlsplit(url)
        username, password = parts.username, parts.password
    except ValueError:
        return  # not a URL we can take apart: the whole of it is registered
    if password:
        remember(password)
        remember_basic(unquote(username or ""), unquote(password))
    if username and _distinctive(unquote(username)):
        remember(username)
        remember(unquote(username))
    secret_parts = [p for p in (*parts.path.split("/"), parts.fragment) if _distinctive(unquote(p))]
    if secret_parts:
        remember(parts.path + (f"?{parts.query}" if parts.query else ""))
        remember(parts.path)
    for part in secret_parts:
        remember(part)
        remember(unquote(part))
    for key, value in parse_qsl(parts.query, keep_blank_values=False):
        if _SECRET_PARAM.search(key) or _distinctive(value):
            remember(value)


def redact(text: str) -> str:
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    return text


def excerpt(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """Outside text as it may be stored or shown: redacted first (a cut must never leave
    part of a secret behind), then at most `limit` characters with a note of what was cut."""
    text = redact(text)
    if len(text) <= limit:
        return text
    cut = len(text[limit:].encode("utf-8", "replace"))
    return f"{text[:limit]}… ({cut} bytes cut)"


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
        answer: str | None = getattr(keyring, operation)(service, username, *args)
        return answer
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


def resolve_headers(headers: dict[str, str]) -> dict[str, str]:
    """Headers with each value that is a secret reference resolved (`X-Api-Key: env:API_KEY`)."""
    return {name: resolve(value) if is_reference(value) else value for name, value in headers.items()}


def masked(value: str) -> str:
    """What may be shown of a secret: that it is there and how long it is, nothing of it."""
    return f"{MASK} ({len(value)} characters)"


def store(ref: str, value: str) -> None:
    _keyring(ref, "set_password", value)


def delete(ref: str) -> None:
    _keyring(ref, "delete_password")
