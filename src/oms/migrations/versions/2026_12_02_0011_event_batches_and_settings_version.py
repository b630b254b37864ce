"""event batches for the notification builder, and one settings version for per-process caches

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 06:00:00

- `event_batches`: one row per committed transaction whose events the worker has not yet turned
  into notifications; `events.batch_id` names each event's transaction. Events recorded before this
  revision were notified in their own transaction (the outbox rows exist), so none is pending.
- `settings_version`: a single row bumped by every change that processes cache (settings, API keys);
  written by the first change (a new store has no row: version 0).
"""

import sqlalchemy as sa
from alembic import op

import oms.store.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_batches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", oms.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_batches")),
        sqlite_autoincrement=True,  # built batches are deleted: their ids must never come back
    )
    op.create_table(
        "settings_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settings_version")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
        batch_op.create_index(batch_op.f("ix_events_batch_id"), ["batch_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_batch_id"))
        batch_op.drop_column("batch_id")
    op.drop_table("settings_version")
    op.drop_table("event_batches")
