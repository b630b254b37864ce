"""Alembic environment: runs the migrations against the URL the caller configured."""

from alembic import context
from sqlalchemy import Connection

from oms.store.db import make_engine
from oms.store.tables import metadata

config = context.config


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    # SQLite cannot reflect the queue index (it has a DESC expression); never autogenerate changes to it.
    return not (type_ == "index" and name == "ix_order_lines_queue")


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


existing = config.attributes.get("connection")
if existing is not None:
    run(existing)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        run(conn)
        conn.commit()
    engine.dispose()
