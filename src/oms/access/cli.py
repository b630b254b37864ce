"""`oms users`: people who sign in to the dashboard."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from oms.domain.access import Role
from oms.domain.errors import DomainError

if TYPE_CHECKING:
    from oms.store.db import Store


class PersonRole(StrEnum):
    """The roles a person signing in to the dashboard may have (channel keys are for integrations)."""

    ADMIN = Role.ADMIN.value
    OPS = Role.OPS.value
    PURCHASING = Role.PURCHASING.value


users_app = typer.Typer(help="Dashboard users (people; API callers use keys).", no_args_is_help=True)
console = Console()


def _store() -> Store:
    from oms.store.db import Store, make_engine

    return Store(make_engine())


@users_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The user name to sign in with.")],
    role: Annotated[PersonRole, typer.Option(help="admin, ops or purchasing.")],
    password: Annotated[
        str | None, typer.Option(help="At least 8 characters; omitted: a random one is made and printed.")
    ] = None,
    if_absent: Annotated[bool, typer.Option("--if-absent", help="Do nothing when the user exists.")] = False,
) -> None:
    """Add a person who signs in to the dashboard (the password is stored as an argon2 hash)."""
    import secrets

    from oms.access.users import create_user, user_exists

    store = _store()
    if if_absent and store.read(lambda c: user_exists(c, name)):
        console.print(f"user '{name}' already exists: unchanged")
        return
    secret = password or secrets.token_urlsafe(12)
    try:
        user = store.write(lambda uow: create_user(uow.conn, name, Role(role.value), secret))
    except DomainError as exc:
        console.print(f"[red]{exc.detail}[/]")
        raise typer.Exit(1) from exc
    console.print(f"[bold]{user.role.value}[/] user created. Sign in to the dashboard with:")
    typer.echo(f"  user name: {user.username}")
    typer.echo(f"  password:  {secret}" if password is None else "  password:  (the one you gave)")


@users_app.command("list")
def list_() -> None:
    """List dashboard users (never their passwords)."""
    from rich.table import Table

    from oms.access.users import list_users

    table = Table("id", "user name", "role", "created", "disabled")
    for u in _store().read(list_users):
        table.add_row(
            str(u["id"]), u["username"], u["role"], str(u["created_at"])[:19], str(u["disabled_at"] or "")[:19]
        )
    console.print(table)


@users_app.command("set-password")
def set_password(
    name: Annotated[str, typer.Argument(help="The user name.")],
    password: Annotated[
        str | None, typer.Option(help="At least 8 characters; omitted: a random one is made and printed.")
    ] = None,
) -> None:
    """Give a user a new password; every session of the user ends at once."""
    import secrets

    from oms.access.users import set_password as set_it

    secret = password or secrets.token_urlsafe(12)
    try:
        done = _store().write(lambda uow: set_it(uow.conn, name, secret))
    except DomainError as exc:
        console.print(f"[red]{exc.detail}[/]")
        raise typer.Exit(1) from exc
    if not done:
        console.print(f"[red]no user '{name}'[/]")
        raise typer.Exit(1)
    console.print(f"password of '{name}' changed; their sessions have ended")
    if password is None:
        typer.echo(f"  password:  {secret}")


@users_app.command("disable")
def disable(name: str) -> None:
    """Stop a user signing in; every session of the user ends at once."""
    from oms.access.users import disable_user

    if not _store().write(lambda uow: disable_user(uow.conn, name)):
        console.print(f"[red]no enabled user '{name}'[/]")
        raise typer.Exit(1)
    console.print(f"user '{name}' disabled")
