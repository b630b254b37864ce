"""shipments.dispatched_at and order_lines.dispatched_at, for lead-time reports

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-26 07:00:00
"""

import sqlalchemy as sa
from alembic import op

import oms.store.types

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dispatched_at", oms.store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_shipments_dispatched_at"), ["dispatched_at"], unique=False)
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dispatched_at", oms.store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_order_lines_dispatched_at"), ["dispatched_at"], unique=False)
    # Dispatched is a terminal state, so a dispatched shipment's last update is its dispatch; a
    # line's dispatch time is that of its latest dispatched shipment.
    op.execute("UPDATE shipments SET dispatched_at = updated_at WHERE status = 'dispatched'")
    op.execute(
        "UPDATE order_lines SET dispatched_at = (SELECT max(s.dispatched_at) FROM shipment_lines sl"
        " JOIN shipments s ON s.id = sl.shipment_id"
        " WHERE sl.line_id = order_lines.id AND sl.qty > 0 AND s.status = 'dispatched')"
        " WHERE shipped_qty > 0"
    )


def downgrade() -> None:
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_lines_dispatched_at"))
        batch_op.drop_column("dispatched_at")
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shipments_dispatched_at"))
        batch_op.drop_column("dispatched_at")
