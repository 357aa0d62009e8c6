"""`state:` — where the rollout's store lives: a SQLite file, or PostgreSQL for a war room across hosts."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Discriminator, Field, Tag

from warroom.core import secrets
from warroom.plan.fields import SecretRef, Strict, TLSOptions
from warroom.plan.urls import refuse_password

DATABASE_URL = ("postgresql://", "postgres://")


def _database_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as exc:
        raise ValueError(f"not a database URL ({exc})") from None
    if not parts.hostname or not parts.path.strip("/"):
        raise ValueError("expected postgresql://USER@HOST:PORT/DATABASE")
    return url


class PostgresState(Strict):
    """`state:` on PostgreSQL: one store for engines and consoles on several hosts (store/postgres.py)."""

    url: Annotated[str, BeforeValidator(refuse_password(f"leave it out and give state.password as {secrets.REF_HELP}")),
                   Field(pattern=r"^postgres(ql)?://\S+$"), AfterValidator(_database_url)]
    password: SecretRef | None = None  # None: libpq's own ways (~/.pgpass, PGPASSWORD, peer or certificate)
    tls: TLSOptions = Field(default_factory=TLSOptions)
    # The rows of this rollout in a database several rollouts share; default: rollout.name.
    rollout: Annotated[str, Field(min_length=1, max_length=120)] | None = None

    def keyed(self, rollout_name: str) -> PostgresState:
        return self if self.rollout else self.model_copy(update={"rollout": rollout_name})

    def __str__(self) -> str:
        return f"{self.url} (rollout {self.rollout})" if self.rollout else self.url


def _state(value: Any) -> Any:
    """`state: postgresql://…` is the short form of `state: {url: postgresql://…}`."""
    return {"url": value} if isinstance(value, str) and value.startswith(DATABASE_URL) else value


def _state_kind(value: Any) -> str:
    return "file" if isinstance(value, str) else "database"


# A path (SQLite) or PostgreSQL; told apart before validation, so a mistake is reported once, in its own terms.
StateConfig = Annotated[
    Annotated[PostgresState, Tag("database")] | Annotated[str, Tag("file")],
    Discriminator(_state_kind),
    BeforeValidator(_state),
]
