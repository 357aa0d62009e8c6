"""`warroom secret set|get|delete REF`: keep flag and source tokens in the keyring.

The value is read from a hidden prompt or from standard input (for scripts), never
from the command line, where it would end up in shell history and `ps`. `get` only
confirms a reference resolves and shows it masked.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from warroom.core import secrets


def add_secret_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "secret",
        help="store, check or delete a secret reference (keyring:service/username)",
        description="Store, check or delete the secrets a plan refers to. " + secrets.REF_HELP + ".",
    )
    p.add_argument("action", choices=("set", "get", "delete"),
                   help="set: store (value from a hidden prompt or stdin); get: check it resolves (masked); delete")
    p.add_argument("ref", metavar="REF", help="keyring:service/username (or env:NAME for get)")
    return p


def _read_value(ref: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"value for {ref} (hidden): ")
    # Piped: one line, without its newline, so `printf %s "$T" | warroom secret set …` and `echo` both work.
    return sys.stdin.readline().rstrip("\r\n")


def run_secret(args: argparse.Namespace) -> int:
    """Exit 0 when done, 1 with a message saying what to do otherwise."""
    ref = args.ref
    try:
        if not secrets.is_reference(ref):
            raise secrets.SecretError(f"not {secrets.REF_HELP}")
        if args.action == "get":
            print(f"{ref}: resolves, {secrets.masked(secrets.resolve(ref))}")
        elif ref.startswith("env:"):
            raise secrets.SecretError(f"{ref} is an environment variable: {args.action} it in the shell that starts warroom "
                                      f"(export {ref[4:]}=… / unset {ref[4:]})")
        elif args.action == "set":
            value = _read_value(ref)
            if not value:
                raise secrets.SecretError("empty value; nothing stored")
            secrets.store(ref, value)
            print(f"{ref}: stored, {secrets.masked(value)}")
        else:
            secrets.delete(ref)
            print(f"{ref}: deleted")
    except secrets.SecretError as exc:
        print(f"warroom secret: {secrets.redact(str(exc))}", file=sys.stderr)
        return 1
    return 0
