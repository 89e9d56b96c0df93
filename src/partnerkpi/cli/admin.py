"""`partnerkpi users|tokens|keys`: manage who may sign in, API tokens and Segment write keys."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

if TYPE_CHECKING:
    from partnerkpi.credentials import Credentials, TokenInfo

DbOption = Annotated[
    str | None, typer.Option("--db", help="DuckDB file (default: $PARTNERKPI_DB, else ./partnerkpi.duckdb)")
]

users_app = typer.Typer(help="Users who may sign in: admins, analysts and partner users.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for the JSON API (stored hashed, revocable).", no_args_is_help=True)
keys_app = typer.Typer(help="Segment write keys for the collector (stored hashed, revocable).", no_args_is_help=True)


class RoleChoice(StrEnum):
    admin = "admin"
    analyst = "analyst"
    partner = "partner"


@contextmanager
def _credentials(db: str | None) -> Iterator[Credentials]:
    from partnerkpi.cli.common import _hub
    from partnerkpi.credentials import Credentials

    with _hub(db) as hub:
        yield Credentials(hub.store, clock=hub.clock)


def _out():
    from partnerkpi.cli.common import out

    return out


@users_app.command("add")
def users_add(
    email: Annotated[str, typer.Argument(help="The user's email (their sign-in name)")],
    role: Annotated[RoleChoice, typer.Option(help="admin, analyst or partner")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          help="The password (asked for, unechoed, when not given)")],
    partner: Annotated[str | None, typer.Option("--partner", help="The partner id of a partner user")] = None,
    db: DbOption = None,
) -> None:
    """Add a user; a partner user is bound to one partner."""
    with _credentials(db) as creds:
        p = creds.add_user(email, password, role.value, partner)
    _out().print(f"added {p.email} ({p.role}{', partner ' + p.partner_id if p.partner_id else ''})")


@users_app.command("list")
def users_list(db: DbOption = None) -> None:
    """List the users."""
    with _credentials(db) as creds:
        users = creds.list_users()
    table = Table(title=f"{len(users)} users", title_justify="left")
    for column in ("email", "role", "partner", "created"):
        table.add_column(column)
    for u in users:
        table.add_row(u.email, u.role, u.partner_id or "", f"{u.created_at:%Y-%m-%d %H:%M}")
    _out().print(table)


@users_app.command("remove")
def users_remove(email: Annotated[str, typer.Argument(help="The user's email")], db: DbOption = None) -> None:
    """Remove a user and revoke their API tokens."""
    with _credentials(db) as creds:
        creds.remove_user(email)
    _out().print(f"removed {email}")


def _token_table(tokens: list[TokenInfo], creds: Credentials, title: str, owner: bool) -> Table:
    table = Table(title=f"{len(tokens)} {title}", title_justify="left")
    columns = ["id", "name", *(["user"] if owner else []), "status", "created", "expires", "last used"]
    for column in columns:
        table.add_column(column)
    now = creds.clock()
    for t in tokens:
        def when(d):
            return f"{d:%Y-%m-%d %H:%M}" if d else ""

        row = [t.token_id, t.name or "", *([t.email or ""] if owner else []), t.status(now), when(t.created_at),
               when(t.expires_at), when(t.last_used_at)]
        table.add_row(*row)
    return table


@tokens_app.command("create")
def tokens_create(
    email: Annotated[str, typer.Argument(help="The user the token acts as")],
    name: Annotated[str | None, typer.Option(help="What the token is for")] = None,
    expires_days: Annotated[int | None, typer.Option("--expires-days", help="Expire after N days")] = None,
    db: DbOption = None,
) -> None:
    """Create an API token; its secret is printed once, here."""
    with _credentials(db) as creds:
        secret = creds.create_token(email, name, expires_days)
    _out().print(f"API token for {email} (shown once; keep it secret):", highlight=False)
    print(secret)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id")],
                  db: DbOption = None) -> None:
    """Revoke an API token."""
    with _credentials(db) as creds:
        info = creds.revoke(token_id, "api")
    _out().print(f"revoked {info.token_id}")


@tokens_app.command("list")
def tokens_list(db: DbOption = None) -> None:
    """List the API tokens (never their secrets)."""
    with _credentials(db) as creds:
        _out().print(_token_table(creds.list_tokens("api"), creds, "API tokens", owner=True))


@keys_app.command("create")
def keys_create(name: Annotated[str, typer.Argument(help="What sends with it, e.g. partner-portal")],
                db: DbOption = None) -> None:
    """Create a Segment write key; its secret is printed once, here."""
    with _credentials(db) as creds:
        secret = creds.create_write_key(name)
    _out().print(f"write key '{name}' (shown once; use it as the Segment SDK's write key):", highlight=False)
    print(secret)


@keys_app.command("revoke")
def keys_revoke(token_id: Annotated[str, typer.Argument(metavar="ID", help="The write key's id")],
                db: DbOption = None) -> None:
    """Revoke a write key: the collector refuses it from now on."""
    with _credentials(db) as creds:
        info = creds.revoke(token_id, "write_key")
    _out().print(f"revoked {info.token_id}")


@keys_app.command("list")
def keys_list(db: DbOption = None) -> None:
    """List the write keys (never their secrets)."""
    with _credentials(db) as creds:
        _out().print(_token_table(creds.list_tokens("write_key"), creds, "write keys", owner=False))
