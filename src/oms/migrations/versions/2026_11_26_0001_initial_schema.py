"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 06:29:46.909499
"""

import sqlalchemy as sa
from alembic import op

import oms.store.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", oms.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", oms.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", oms.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("updated_at", oms.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customers")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", oms.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("order_number", sa.String(length=64), nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("po_number", sa.String(length=64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_order_number"), ["order_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_sku"), ["sku"], unique=False)

    op.create_table(
        "products",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit_price", oms.store.types.Money(), nullable=False),
        sa.Column("lead_time_days", sa.Integer(), nullable=True),
        sa.Column("backorder_policy", sa.JSON(), nullable=True),
        sa.Column("on_hand", sa.Integer(), server_default="0", nullable=False),
        sa.Column("allocated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("backordered", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_at", oms.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_products")),
    )
    op.create_table(
        "purchase_orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("po_number", sa.String(length=64), nullable=False),
        sa.Column("supplier", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", oms.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_orders")),
        sa.UniqueConstraint("po_number", name=op.f("uq_purchase_orders_po_number")),
    )
    with op.batch_alter_table("purchase_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_purchase_orders_status"), ["status"], unique=False)

    op.create_table(
        "receipts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("grn_number", sa.String(length=64), nullable=False),
        sa.Column("po_number", sa.String(length=64), nullable=True),
        sa.Column("received_at", oms.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipts")),
        sa.UniqueConstraint("grn_number", name=op.f("uq_receipts_grn_number")),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("order_number", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("ship_policy", sa.String(length=16), nullable=False),
        sa.Column("placed_at", oms.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("order_value", oms.store.types.Money(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", oms.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.customer_id"], name=op.f("fk_orders_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("order_number", name=op.f("uq_orders_order_number")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_channel"), ["channel"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_status"), ["status"], unique=False)

    op.create_table(
        "po_lines",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("po_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("received_qty", sa.Integer(), server_default="0", nullable=False),
        sa.Column("expected_date", sa.Date(), nullable=False),
        sa.Column("open", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(["po_id"], ["purchase_orders.id"], name=op.f("fk_po_lines_po_id_purchase_orders")),
        sa.ForeignKeyConstraint(["sku"], ["products.sku"], name=op.f("fk_po_lines_sku_products")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_po_lines")),
        sa.UniqueConstraint("po_id", "sku", name="uq_po_lines_po_id_sku"),
    )
    with op.batch_alter_table("po_lines", schema=None) as batch_op:
        batch_op.create_index(
            "ix_po_lines_open_sku",
            ["sku", "expected_date"],
            unique=False,
            postgresql_where=sa.text("open = 1"),
            sqlite_where=sa.text("open = 1"),
        )

    op.create_table(
        "stock_movements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("qty_delta", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("at", oms.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["sku"], ["products.sku"], name=op.f("fk_stock_movements_sku_products")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_movements")),
    )
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stock_movements_sku"), ["sku"], unique=False)

    op.create_table(
        "order_lines",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("unit_price", oms.store.types.Money(), nullable=False),
        sa.Column("allocated_qty", sa.Integer(), nullable=False),
        sa.Column("backordered_qty", sa.Integer(), nullable=False),
        sa.Column("shipped_qty", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cancelled_qty", sa.Integer(), server_default="0", nullable=False),
        sa.Column("released_qty", sa.Integer(), server_default="0", nullable=False),
        sa.Column("eta", sa.Date(), nullable=True),
        sa.Column("eta_basis", sa.String(length=80), nullable=True),
        sa.Column("promised_date", sa.Date(), nullable=True),
        sa.Column("backordered_at", oms.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("order_number", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("placed_at", oms.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("tier_rank", sa.Integer(), nullable=False),
        sa.Column("order_value", oms.store.types.Money(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_order_lines_order_id_orders")),
        sa.ForeignKeyConstraint(["sku"], ["products.sku"], name=op.f("fk_order_lines_sku_products")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
        sa.UniqueConstraint("order_id", "line_no", name="uq_order_lines_order_id_line_no"),
    )
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.create_index(
            "ix_order_lines_queue",
            ["sku", sa.text("priority DESC"), "placed_at", "order_number", "line_no"],
            unique=False,
            postgresql_where=sa.text("backordered_qty > 0"),
            sqlite_where=sa.text("backordered_qty > 0"),
        )
        batch_op.create_index(
            "ix_order_lines_pending_age",
            ["placed_at", "order_number", "line_no"],
            unique=False,
            postgresql_where=sa.text("backordered_qty > 0"),
            sqlite_where=sa.text("backordered_qty > 0"),
        )
        batch_op.create_index(
            "ix_order_lines_pending_channel",
            ["channel", "placed_at"],
            unique=False,
            postgresql_where=sa.text("backordered_qty > 0"),
            sqlite_where=sa.text("backordered_qty > 0"),
        )
        batch_op.create_index(
            "ix_order_lines_pending_customer",
            ["customer_id", "placed_at"],
            unique=False,
            postgresql_where=sa.text("backordered_qty > 0"),
            sqlite_where=sa.text("backordered_qty > 0"),
        )

    op.create_table(
        "shipments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_number", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("carrier", sa.String(length=100), nullable=True),
        sa.Column("tracking_number", sa.String(length=100), nullable=True),
        sa.Column("created_at", oms.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", oms.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_shipments_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
    )
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shipments_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_shipments_status"), ["status"], unique=False)

    op.create_table(
        "allocations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("line_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=True),
        sa.Column("at", oms.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["line_id"], ["order_lines.id"], name=op.f("fk_allocations_line_id_order_lines")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocations")),
    )
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_allocations_line_id"), ["line_id"], unique=False)

    op.create_table(
        "shipment_lines",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("shipment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("line_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["line_id"], ["order_lines.id"], name=op.f("fk_shipment_lines_line_id_order_lines")),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["shipments.id"], name=op.f("fk_shipment_lines_shipment_id_shipments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipment_lines")),
    )
    with op.batch_alter_table("shipment_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shipment_lines_line_id"), ["line_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_shipment_lines_shipment_id"), ["shipment_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shipment_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shipment_lines_shipment_id"))
        batch_op.drop_index(batch_op.f("ix_shipment_lines_line_id"))

    op.drop_table("shipment_lines")
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_allocations_line_id"))

    op.drop_table("allocations")
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shipments_status"))
        batch_op.drop_index(batch_op.f("ix_shipments_order_id"))

    op.drop_table("shipments")
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_order_lines_queue")
        batch_op.drop_index(
            "ix_order_lines_pending_customer",
            postgresql_where=sa.text("backordered_qty > 0"),
            sqlite_where=sa.text("backordered_qty > 0"),
        )
        batch_op.drop_index(
            "ix_order_lines_pending_channel",
            postgresql_where=sa.text("backordered_qty > 0"),
            sqlite_where=sa.text("backordered_qty > 0"),
        )
        batch_op.drop_index(
            "ix_order_lines_pending_age",
            postgresql_where=sa.text("backordered_qty > 0"),
            sqlite_where=sa.text("backordered_qty > 0"),
        )

    op.drop_table("order_lines")
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stock_movements_sku"))

    op.drop_table("stock_movements")
    with op.batch_alter_table("po_lines", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_po_lines_open_sku", postgresql_where=sa.text("open = 1"), sqlite_where=sa.text("open = 1")
        )

    op.drop_table("po_lines")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_status"))
        batch_op.drop_index(batch_op.f("ix_orders_customer_id"))
        batch_op.drop_index(batch_op.f("ix_orders_channel"))

    op.drop_table("orders")
    op.drop_table("settings")
    op.drop_table("receipts")
    with op.batch_alter_table("purchase_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_purchase_orders_status"))

    op.drop_table("purchase_orders")
    op.drop_table("products")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_sku"))
        batch_op.drop_index(batch_op.f("ix_events_order_number"))

    op.drop_table("events")
    op.drop_table("customers")
    op.drop_table("api_keys")
