"""The schema, as SQLAlchemy Core tables. Migrations in oms/migrations create exactly this."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from oms.store.types import Id, Money, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

SKU = String(64)
pending = text("backordered_qty > 0")

products = Table(
    "products",
    metadata,
    Column("sku", SKU, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("unit_price", Money, nullable=False),
    Column("lead_time_days", Integer),
    Column("backorder_policy", JSON),  # None: the default policy applies
    # Counters kept in the same transaction as the rows they sum, under the SKU's row lock.
    Column("on_hand", Integer, nullable=False, server_default="0"),
    Column("allocated", Integer, nullable=False, server_default="0"),
    Column("backordered", Integer, nullable=False, server_default="0"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("updated_at", UTCDateTime, nullable=False),
)

customers = Table(
    "customers",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(254), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
)

# One row: bumped in the transaction of every change to what processes cache (settings, API keys),
# so each process sees a change at its next transaction (oms.store.uow, oms.access.keys).
settings_version = Table(
    "settings_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Id, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_number", String(64), nullable=False, unique=True),
    Column("channel", String(64), nullable=False, index=True),
    Column("customer_id", String(64), ForeignKey("customers.customer_id"), nullable=False, index=True),
    Column("ship_policy", String(16), nullable=False),
    Column("placed_at", UTCDateTime, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("order_value", Money, nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("request_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# An order line carries a copy of its order's queue keys so a SKU's queue is one index range scan.
#
# What the database does on its own when order lines are written (migrations 0009 and 0010): triggers
# keep the report rollups in the writer's own transaction. An insert adds the line's placement facts
# (placed and waiting sums by day, hour, channel, SKU, customer and tier); an update moves only the
# change in `backordered_qty` (and its value, unit_price x units), filed under the line's *new* keys.
# So the columns below are written once, at placement, and never again: a use case that changed one
# would file sums under the wrong key. `oms.engine.MUTABLE` lists what use cases may change;
# `tests/integration/test_database_contract.py` checks every UPDATE the use cases send against this.
# A customer's tier change moves its waiting lines between tier rows (a trigger on customers.tier).
ORDER_LINE_FACTS = (
    "order_id",
    "line_no",
    "sku",
    "qty",
    "unit_price",
    "placed_at",
    "channel",
    "customer_id",
    "order_number",
    "backordered_at",
)
order_lines = Table(
    "order_lines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", ForeignKey("orders.id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("sku", SKU, ForeignKey("products.sku"), nullable=False),
    Column("qty", Integer, nullable=False),
    Column("unit_price", Money, nullable=False),
    Column("allocated_qty", Integer, nullable=False),
    Column("backordered_qty", Integer, nullable=False),
    Column("shipped_qty", Integer, nullable=False, server_default="0"),
    Column("cancelled_qty", Integer, nullable=False, server_default="0"),
    Column("released_qty", Integer, nullable=False, server_default="0"),
    Column("eta", Date),
    Column("eta_basis", String(80)),
    Column("promised_date", Date),  # the first ETA ever given: the promise kept or broken
    Column("backordered_at", UTCDateTime),
    Column("dispatched_at", UTCDateTime, index=True),  # when its latest units left: lead-time reports
    Column("order_number", String(64), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("placed_at", UTCDateTime, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("tier_rank", Integer, nullable=False),
    Column("order_value", Money, nullable=False),
    UniqueConstraint("order_id", "line_no", name="uq_order_lines_order_id_line_no"),
    Index(
        "ix_order_lines_queue",
        "sku",
        text("priority DESC"),
        "placed_at",
        "order_number",
        "line_no",
        postgresql_where=pending,
        sqlite_where=pending,
    ),
    Index(
        "ix_order_lines_pending_customer", "customer_id", "placed_at", postgresql_where=pending, sqlite_where=pending
    ),
    Index("ix_order_lines_pending_channel", "channel", "placed_at", postgresql_where=pending, sqlite_where=pending),
    Index(
        "ix_order_lines_pending_age",
        "placed_at",
        "order_number",
        "line_no",
        postgresql_where=pending,
        sqlite_where=pending,
    ),
    # The Back Orders tab's default order across SKUs (migration 0003).
    Index(
        "ix_order_lines_pending_priority",
        text("priority DESC"),
        "placed_at",
        "order_number",
        "line_no",
        postgresql_where=pending,
        sqlite_where=pending,
    ),
    # One SKU's waiting lines in age order: the Back Orders tab filtered by SKU, sorted by age (0008).
    Index(
        "ix_order_lines_pending_sku_age",
        "sku",
        "placed_at",
        "order_number",
        "line_no",
        postgresql_where=pending,
        sqlite_where=pending,
    ),
    # Room on each page for a re-dated line's new version: ETA updates stay HOT (migration 0008).
    postgresql_with={"fillfactor": 90},
)

allocations = Table(
    "allocations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("line_id", ForeignKey("order_lines.id"), nullable=False, index=True),
    Column("sku", SKU, nullable=False),
    Column("qty", Integer, nullable=False),
    Column("source", String(20), nullable=False),  # placement, receipt, adjustment, cancellation
    Column("ref", String(64)),
    Column("at", UTCDateTime, nullable=False),
)

stock_movements = Table(
    "stock_movements",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sku", SKU, ForeignKey("products.sku"), nullable=False, index=True),
    Column("qty_delta", Integer, nullable=False),
    Column("kind", String(20), nullable=False),  # receipt, adjustment, dispatch
    Column("ref", String(64)),
    Column("reason", String(500)),
    Column("at", UTCDateTime, nullable=False),
)

purchase_orders = Table(
    "purchase_orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("po_number", String(64), nullable=False, unique=True),
    Column("supplier", String(200), nullable=False),
    Column("status", String(16), nullable=False, index=True),  # open, received, cancelled
    Column("created_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
)

po_lines = Table(
    "po_lines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("po_id", ForeignKey("purchase_orders.id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("sku", SKU, ForeignKey("products.sku"), nullable=False),
    Column("qty", Integer, nullable=False),
    Column("received_qty", Integer, nullable=False, server_default="0"),
    Column("expected_date", Date, nullable=False),
    Column("open", Integer, nullable=False, server_default="1"),  # 1 while units are still to come
    UniqueConstraint("po_id", "sku", name="uq_po_lines_po_id_sku"),
    Index(
        "ix_po_lines_open_sku", "sku", "expected_date", postgresql_where=text("open = 1"), sqlite_where=text("open = 1")
    ),
)

receipts = Table(
    "receipts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("grn_number", String(64), nullable=False, unique=True),
    Column("po_number", String(64)),
    Column("received_at", UTCDateTime, nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("result", JSON, nullable=False),
)

shipments = Table(
    "shipments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", ForeignKey("orders.id"), nullable=False, index=True),
    Column("order_number", String(64), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("carrier", String(100)),
    Column("tracking_number", String(100)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("dispatched_at", UTCDateTime, index=True),  # set once, on dispatch: lead-time reports read it
)

shipment_lines = Table(
    "shipment_lines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("shipment_id", ForeignKey("shipments.id"), nullable=False, index=True),
    Column("line_id", ForeignKey("order_lines.id"), nullable=False, index=True),
    Column("line_no", Integer, nullable=False),
    Column("sku", SKU, nullable=False),
    Column("qty", Integer, nullable=False),
)

# A transaction's events carry its batch; the batch row waits in event_batches until the worker has
# turned the events into notifications (oms.notifications.builder), then it is deleted.
events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("batch_id", Id, index=True),  # None for events recorded before migration 0011
    Column("at", UTCDateTime, nullable=False),
    Column("type", String(40), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("order_number", String(64), index=True),
    Column("sku", SKU, index=True),
    Column("po_number", String(64)),
    Column("data", JSON, nullable=False),
)

# Transactions whose events are not yet turned into notifications. Ids are drawn when the events are
# written, the last thing a transaction does while it holds its row locks, so two transactions that
# touch the same order get batch ids in commit order (oms.notifications.builder relies on it).
event_batches = Table(
    "event_batches",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    # Rows are deleted once built; SQLite would then hand a deleted row's id to the next batch, and
    # the worker would build the events of both. AUTOINCREMENT never reuses an id.
    sqlite_autoincrement=True,
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("channel", String(64)),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

# People who sign in to the dashboard (API callers use api_keys).
users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
)

# Signed-in dashboard sessions. The session cookie carries a random token, this table only its SHA-256
# digest. Signing out deletes the row; a password change or disabling the user deletes all the user's
# rows, so a copied cookie stops working at once (oms.access.users).
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

# Sign-in attempts counted per user name and per client address, in fixed windows (oms.access.throttle).
# Keys are SHA-256 digests: what people type as a user name is sometimes their password.
sign_in_attempts = Table(
    "sign_in_attempts",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("window_started_at", UTCDateTime, nullable=False, index=True),
    Column("attempts", Integer, nullable=False),
    Column("last_attempt_at", UTCDateTime, nullable=False),
)

# The first response to a POST sent with an Idempotency-Key, replayed for retries with that key.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("principal", String(100), nullable=False),
    Column("key", String(255), nullable=False),
    Column("method", String(10), nullable=False),
    Column("path", String(500), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # in_progress, applied (committed, not yet answered), done
    Column("response_status", Integer),
    Column("response_body", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    UniqueConstraint("principal", "key", name="uq_idempotency_keys_principal_key"),
)

# ---- notifications: the outbox, webhook subscriptions, delivery log ------------------------------

# A notification written in the same transaction as the change that caused it; workers deliver it
# after commit. `id` is stable across retries (the webhook-id header, the email's Message-ID).
outbox = Table(
    "outbox",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(16), nullable=False),  # email, webhook
    Column("event_type", String(40), nullable=False),  # a template name or the business event's type
    Column("recipient", String(500), nullable=False),  # an email address or a webhook URL
    Column("subscription_id", ForeignKey("webhook_subscriptions.id")),
    Column("order_number", String(64), index=True),
    Column("channel", String(64)),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # pending, delivered, dead
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("leased_until", UTCDateTime),
    Column("locked_by", String(100)),
    Column("last_error", String(1000)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    Index(
        "ix_outbox_due",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
    Index("ix_outbox_created", "created_at", "id"),
)

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("url", String(500), nullable=False),
    Column("event_types", JSON, nullable=False),  # a list of event types; ["*"] = every event
    Column("secret", String(100), nullable=False),  # "whsec_" + base64 key (Standard Webhooks)
    Column("description", String(200)),
    Column("active", Integer, nullable=False, server_default="1"),
    Column("created_at", UTCDateTime, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subscription_id", ForeignKey("webhook_subscriptions.id"), nullable=False, index=True),
    Column("message_id", String(40), nullable=False, index=True),
    Column("event_type", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("status_code", Integer),
    Column("ok", Integer, nullable=False),
    Column("error", String(1000)),
    Column("duration_ms", Integer, nullable=False),
)

# ---- report rollups (migration 0009) --------------------------------------------------------------

# Sums of order-line facts that the reports would otherwise recount over every line, kept by database
# triggers on order_lines and customers (so every writer keeps them, in its own transaction). On
# PostgreSQL a trigger appends its change as a row with delta = 1 (no row is ever updated by two
# writers, so they never wait on each other); a report folds those into one row per key (delta = 0)
# when it reads. SQLite has one writer at a time, so there the triggers add into the one row per key.
# A key's figures are always the sum of its rows.

# The delta rows a reader folds: a small partial index, so "is there any" and "which keys" need no
# scan of the table (migration 0010 gives every rollup one).
delta_row = text("delta = 1")


def _rollup(name: str, *columns: Column[Any], key: tuple[str, ...]) -> Table:
    """A rollup: its key and sum columns, the delta flag, an index on the key and one on delta rows."""
    return Table(
        name,
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        *columns,
        Column("delta", Integer, nullable=False, server_default="0"),
        Index(f"ix_{name}_key", *key),
        Index(f"ix_{name}_delta", "id", postgresql_where=delta_row, sqlite_where=delta_row),
    )


def _waiting_sums() -> list[Column[Any]]:
    return [
        Column("lines", Integer, nullable=False),
        Column("units", Integer, nullable=False),
        Column("value", Money, nullable=False),  # cents of unit_price * backordered_qty
    ]


# What each line was when placed (never changes afterwards): fill rate and units that had to wait.
report_placed_rollup = _rollup(
    "report_placed_rollup",
    Column("placed_day", Date, nullable=False),  # UTC day of placed_at
    Column("backordered_day", Date),  # UTC day of backordered_at; None: nothing waited
    Column("channel", String(64), nullable=False),
    Column("lines", Integer, nullable=False),
    Column("units_ordered", Integer, nullable=False),
    Column("units_taken", Integer, nullable=False),  # allocated at placement
    Column("lines_filled", Integer, nullable=False),  # lines that took every unit at placement
    Column("units_backordered", Integer, nullable=False),  # ordered minus taken, of lines that waited
    key=("placed_day", "channel"),
)

# The same placement facts per SKU and channel, for the fill rate by SKU.
report_sku_rollup = _rollup(
    "report_sku_rollup",
    Column("sku", SKU, nullable=False),
    Column("channel", String(64), nullable=False),
    Column("lines", Integer, nullable=False),
    Column("units_ordered", Integer, nullable=False),
    Column("units_taken", Integer, nullable=False),
    Column("lines_filled", Integer, nullable=False),
    key=("sku", "channel"),
)

# Lines waiting now (backordered_qty > 0) by the hour they were placed, channel and the customer's tier.
# Hours, so that an age bucket's boundary (now - N days) splits only one hour's lines.
report_pending_rollup = _rollup(
    "report_pending_rollup",
    Column("placed_hour", UTCDateTime, nullable=False),  # placed_at cut to its UTC hour
    Column("channel", String(64), nullable=False),
    Column("tier", String(16), nullable=False),
    *_waiting_sums(),
    key=("placed_hour", "channel", "tier"),
)

# Lines waiting now (migration 0010), per SKU and channel: ranks SKUs by units waiting.
report_waiting_sku_rollup = _rollup(
    "report_waiting_sku_rollup",
    Column("sku", SKU, nullable=False),
    Column("channel", String(64), nullable=False),
    *_waiting_sums(),
    key=("sku", "channel"),
)
# Per SKU, channel and UTC day placed: the age buckets of the SKUs a breakdown shows.
report_waiting_sku_day_rollup = _rollup(
    "report_waiting_sku_day_rollup",
    Column("sku", SKU, nullable=False),
    Column("channel", String(64), nullable=False),
    Column("placed_day", Date, nullable=False),
    *_waiting_sums(),
    key=("sku", "placed_day", "channel"),
)
# Per customer and channel; channel '' (no channel code is empty) holds the customer's sums over
# every channel, so ranking customers reads one row per customer.
report_waiting_customer_rollup = _rollup(
    "report_waiting_customer_rollup",
    Column("customer_id", String(64), nullable=False),
    Column("channel", String(64), nullable=False),
    *_waiting_sums(),
    key=("channel", "customer_id"),
)
