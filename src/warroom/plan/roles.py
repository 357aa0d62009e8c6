"""Roles: named groups of people who may sign off, as the plan names them.

A member is a Unix account (SQLite: the engine names a sender by the uid the kernel proves)
or a PostgreSQL role (the session's role): never a name someone types at a prompt.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from warroom.plan.fields import Ident, Strict

# An account or a database role: what `id -un` prints, or `SELECT session_user`.
Member = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.@-]*$", max_length=64)]


class Role(Strict):
    members: list[Member]
    description: str = ""


Roles = dict[Ident, Role]
