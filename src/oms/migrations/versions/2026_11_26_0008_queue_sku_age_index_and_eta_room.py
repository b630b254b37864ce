"""a SKU's waiting lines by age; order_lines pages keep 10 % free on PostgreSQL for ETA updates

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 10:00:00

`ix_order_lines_pending_sku_age` serves the Back Orders tab filtered by SKU in age order (and its
keyset pages): without it SQLite read all of a popular SKU's waiting lines and sorted them for
each page (1.4-2.4 s at 1M lines), and PostgreSQL filtered the all-SKU age index. It is one more
partial index on the queue table, so every allocation pays for it. Measured with the allocation
floor (oms.bench.floor) at 1M lines, 200 SKUs / ~9,950 allocations, index dropped inside the
rolled-back transaction on alternate runs, median of 6 each under a load average of 10-12:
PostgreSQL 2.08 s with it, 2.10 s without (0.99x); SQLite 4.50 s with, 3.68 s without (1.22x).

Re-dating a queue (rule 9) rewrites `eta`, `eta_basis` and `promised_date` of thousands of lines in
one statement. None of them is indexed, so PostgreSQL can write each new row version as a HOT update
(no new entry in any of the table's indexes), but only when the row's page has room for it.
Loaded full, the pages have none: measured on 10,000 lines of one SKU spread over a copy of the
queue with the same eight indexes as then, the update took 1.47 s at fillfactor 100 (95 of 10,000 updates
HOT) and 0.14-0.17 s at fillfactor 90 (9,937 HOT), for 11 % more heap. Allocation is unchanged:
it changes `backordered_qty`, which the partial indexes' predicate reads, so it was never HOT.

The setting applies to pages written from now on; an existing store gets it as its lines turn
over, or at once with `VACUUM FULL order_lines` in a maintenance window. SQLite has no such setting.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


PENDING = sa.text("backordered_qty > 0")


def upgrade() -> None:
    op.create_index(
        "ix_order_lines_pending_sku_age",
        "order_lines",
        ["sku", "placed_at", "order_number", "line_no"],
        unique=False,
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE order_lines SET (fillfactor = 90)")
    elif bind.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first():
        # A store analyzed before has statistics for every index but this one; SQLite would take
        # the unmeasured index for a SKU's queue order and sort (1 s at 1M lines), so measure it.
        op.execute("ANALYZE ix_order_lines_pending_sku_age")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE order_lines RESET (fillfactor)")
    op.drop_index("ix_order_lines_pending_sku_age", table_name="order_lines")
