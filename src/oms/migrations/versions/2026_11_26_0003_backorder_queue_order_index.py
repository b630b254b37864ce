"""an index for the Back Orders tab's queue order across SKUs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 07:20:00

Without it, the unfiltered queue page sorted by the default rule (priority, placed_at) sorts every
waiting line for each page. Measured against the allocation floor at 300k lines, the fifth partial
index on order_lines costs allocation nothing the noise of a shared machine can show.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PENDING = sa.text("backordered_qty > 0")


def upgrade() -> None:
    op.create_index(
        "ix_order_lines_pending_priority",
        "order_lines",
        [sa.text("priority DESC"), "placed_at", "order_number", "line_no"],
        unique=False,
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_order_lines_pending_priority", table_name="order_lines")
