"""The `oms` command line: serve, migrate, keys, demo data.

Start-up is kept light: this module and the sub-apps it adds declare commands and options with the
standard library, Typer and Rich only; each command imports the app (SQLAlchemy, FastAPI, the worker,
the reports) inside its body. tests/integration/test_cli_startup.py holds the list of what must not load.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from oms.access.cli import users_app
from oms.bench.cli import bench_app
from oms.domain.access import Role
from oms.reports.cli import report_command
from oms.worker_cli import worker_command

if TYPE_CHECKING:
    from oms.store.db import Store

app = typer.Typer(
    help="oms: order management with back orders at its heart.", no_args_is_help=True, pretty_exceptions_enable=False
)


@app.callback()
def _read_the_environment() -> None:
    # Each command reads the environment's settings afresh (one process runs one command; a test's
    # CliRunner runs many in one process, each with its own environment).
    from oms.settings import forget

    forget()


db_app = typer.Typer(help="The database: migrations, backup and restore.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")  # the dashboard's people, kept with the dashboard
app.add_typer(bench_app, name="bench")
app.command("worker")(worker_command)  # delivery and scheduled jobs (oms.worker, imported when run)
app.command("report")(report_command)  # report tables and CSV
console = Console()


def _store() -> Store:
    from oms.store.db import Store, make_engine

    return Store(make_engine())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes (use PostgreSQL for more than one).")] = 1,
) -> None:
    """Serve the API and the dashboard."""
    import uvicorn

    from oms.api.logs import configure_logging, logging_config
    from oms.store.db import database_url, is_sqlite, shown_url

    configure_logging()

    console.print(f"oms on http://{host}:{port}  (store: {shown_url(database_url())})")
    from oms.settings import settings

    if is_sqlite(database_url()) and settings().inprocess_worker:
        console.print("in-process worker: notifications built and delivered by this process")
    uvicorn.run(
        "oms.app:serve_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        log_config=logging_config(),  # JSON lines; each worker process applies it
        access_log=False,  # the API's Guard writes one structured line per request instead
        http="oms.api.slow_clients:DeadlineH11Protocol",  # drops clients that never finish a request
    )


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Apply the schema migrations."""
    from oms.store.migrate import upgrade

    upgrade(revision=revision)
    console.print(f"database at {revision}")


@db_app.command("backup")
def db_backup(path: Annotated[Path, typer.Argument(help="The backup file to write.")]) -> None:
    """Write a consistent backup of the store (SQLite online backup; pg_dump -Fc on PostgreSQL)."""
    from oms.store.backup import BackupError, backup
    from oms.store.db import database_url

    try:
        done = backup(database_url(), path)
    except BackupError as exc:
        typer.echo(f"backup failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"backed up {done.tables} tables to {done.path} ({done.bytes:,} bytes)")


@db_app.command("restore")
def db_restore(
    path: Annotated[Path, typer.Argument(help="A file written by `oms db backup`.")],
    force: Annotated[bool, typer.Option("--force", help="Replace a store that holds data.")] = False,
) -> None:
    """Replace the store with a backup; a store that holds data is refused unless --force."""
    from oms.store.backup import BackupError, restore
    from oms.store.db import database_url

    try:
        done = restore(database_url(), path, force=force)
    except BackupError as exc:
        typer.echo(f"restore failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"restored {done.tables} tables from {done.path}")


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="admin, ops, purchasing or channel.")],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")],
    channel: Annotated[
        str | None,
        typer.Option(help="The channel of a channel key (required for, and accepted only with, --role channel)."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Revoke the active keys of this name first (one key per name).")
    ] = False,
) -> None:
    """Make an API key and print it once (only its hash is stored)."""
    from oms.access.keys import create_key
    from oms.domain.errors import DomainError

    try:
        token = _store().write(lambda uow: create_key(uow.conn, role, name, channel, replace=replace))
    except DomainError as exc:
        typer.echo(f"no key made: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
    console.print(f"[bold]{role.value}[/] key '{name}' (shown once):")
    typer.echo(token)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never the keys themselves)."""
    from rich.table import Table

    from oms.access.keys import list_keys

    table = Table("id", "name", "role", "channel", "prefix", "created", "last used", "revoked")
    for k in _store().read(list_keys):
        table.add_row(
            str(k["id"]),
            k["name"],
            k["role"],
            k["channel"] or "",
            k["prefix"] + "…",
            str(k["created_at"])[:19],
            str(k["last_used_at"] or "")[:19],
            str(k["revoked_at"] or "")[:19],
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: int) -> None:
    """Revoke a key by its id."""
    from oms.access.keys import revoke_key

    _store().write(lambda uow: revoke_key(uow.conn, key_id))
    console.print(f"key {key_id} revoked")


@app.command()
def demo(
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing when the store has data.")] = False,
    seed: int = 7,
    orders: int = 2000,
) -> None:
    """Load a realistic data set: products, customers of every tier, weeks of orders, open and late POs."""
    from oms.demo import load_demo, store_is_empty

    store = _store()
    if not store.read(store_is_empty):
        if if_empty:
            console.print("store already has data: demo not loaded")
            return
        raise typer.BadParameter("the store already has data; demo data goes only into a new store")
    summary = load_demo(store, seed=seed, n_orders=orders, progress=console)
    console.print(summary)


@app.command("release-due")
def release_due() -> None:
    """Release units held for a pre-order release date that has come."""
    from oms.fulfillment.use_cases import release_due as run

    n = _store().write(run, actor="cli")
    console.print(f"{n} orders settled")


def main() -> None:
    """The `oms` command. A refusal (an unknown key, a bad argument the rules catch) or a store without
    its tables is one line on stderr and exit status 2, never a traceback; anything else is a bug and
    keeps its traceback."""
    try:
        app()
    except Exception as exc:
        message = _one_line(exc)
        if message is None:
            raise
        Console(stderr=True).print(f"oms: {message}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None


def _one_line(exc: Exception) -> str | None:
    from oms.domain.errors import DomainError

    if isinstance(exc, DomainError):
        return exc.detail
    text = str(getattr(exc, "orig", None) or exc)
    if type(exc).__module__.startswith("sqlalchemy") and (
        "no such table" in text or ("relation" in text and "does not exist" in text)
    ):
        return "this store has no tables yet (or not all of them): run `oms db upgrade` first."
    return None
