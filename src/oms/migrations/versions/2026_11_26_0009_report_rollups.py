"""report rollups: placement facts and waiting lines summed by day or hour, channel, tier and SKU, kept by triggers

Revision ID: 0009
Revises: 0007
Create Date: 2026-11-26 09:30:00

The reports read these small tables instead of recounting a million order lines. Triggers on
order_lines and customers keep them in the writer's own transaction, whatever code path writes:
- PostgreSQL: statement-level triggers with transition tables (one grouped INSERT per statement,
  the engine's writes being set-based) append delta rows; the worker folds them (oms.services.rollups;
  readers sum every row of a key, and never fold).
- SQLite: row triggers add into the one row per key (one writer at a time, so no contention).
Order lines are never deleted and their placement facts (qty, allocated_qty and backordered_at at
insert, placed_at, channel, customer_id, sku, unit_price) never change after insert; the triggers
rely on it, and tests compare the rollups with a recount after random operations.
"""

import sqlalchemy as sa
from alembic import op

import oms.store.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TAKEN = "CASE WHEN {r}.backordered_at IS NULL THEN {r}.qty ELSE {r}.allocated_qty END"

# ---- PostgreSQL ------------------------------------------------------------------------------------

PG_DAY = "(({c}) AT TIME ZONE 'UTC')::date"
PG_HOUR = "(date_trunc('hour', ({c}) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
# The UTC hour as SQLAlchemy stores a time on SQLite, so it compares with bound times.
SQLITE_HOUR = "strftime('%Y-%m-%d %H:00:00.000000', {c})"

PG_LINES_INSERTED = f"""
CREATE FUNCTION oms_report_lines_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO report_placed_rollup
    (placed_day, backordered_day, channel, lines, units_ordered, units_taken, lines_filled, units_backordered, delta)
  SELECT d, bd, channel, count(*), sum(qty), sum(taken), sum(CASE WHEN taken >= qty THEN 1 ELSE 0 END),
         sum(CASE WHEN bd IS NULL THEN 0 ELSE qty - taken END), 1
  FROM (SELECT {PG_DAY.format(c="n.placed_at")} AS d, {PG_DAY.format(c="n.backordered_at")} AS bd, n.channel,
               n.qty, {TAKEN.format(r="n")} AS taken FROM new_rows n) x
  GROUP BY d, bd, channel;
  INSERT INTO report_sku_rollup (sku, channel, lines, units_ordered, units_taken, lines_filled, delta)
  SELECT sku, channel, count(*), sum(qty), sum(taken), sum(CASE WHEN taken >= qty THEN 1 ELSE 0 END), 1
  FROM (SELECT n.sku, n.channel, n.qty, {TAKEN.format(r="n")} AS taken FROM new_rows n) x
  GROUP BY sku, channel;
  INSERT INTO report_pending_rollup (placed_hour, channel, tier, lines, units, value, delta)
  SELECT {PG_HOUR.format(c="n.placed_at")}, n.channel, c.tier, count(*), sum(n.backordered_qty),
         sum(n.unit_price * n.backordered_qty), 1
  FROM new_rows n JOIN customers c ON c.customer_id = n.customer_id
  WHERE n.backordered_qty > 0
  GROUP BY 1, 2, 3;
  RETURN NULL;
END $$
"""

PG_LINES_UPDATED = f"""
CREATE FUNCTION oms_report_lines_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO report_pending_rollup (placed_hour, channel, tier, lines, units, value, delta)
  SELECT x.d, x.channel, c.tier, sum(x.l), sum(x.u), sum(x.v), 1
  FROM (
    SELECT {PG_HOUR.format(c="n.placed_at")} AS d, n.channel, n.customer_id,
           (CASE WHEN n.backordered_qty > 0 THEN 1 ELSE 0 END)
             - (CASE WHEN o.backordered_qty > 0 THEN 1 ELSE 0 END) AS l,
           greatest(n.backordered_qty, 0) - greatest(o.backordered_qty, 0) AS u,
           n.unit_price * greatest(n.backordered_qty, 0) - o.unit_price * greatest(o.backordered_qty, 0) AS v
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.backordered_qty <> o.backordered_qty
  ) x JOIN customers c ON c.customer_id = x.customer_id
  GROUP BY 1, 2, 3
  HAVING sum(x.l) <> 0 OR sum(x.u) <> 0 OR sum(x.v) <> 0;
  RETURN NULL;
END $$
"""

PG_TIER_CHANGED = f"""
CREATE FUNCTION oms_report_tier_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO report_pending_rollup (placed_hour, channel, tier, lines, units, value, delta)
  SELECT {PG_HOUR.format(c="l.placed_at")}, l.channel, t.tier, sum(t.sign), sum(t.sign * l.backordered_qty),
         sum(t.sign * l.unit_price * l.backordered_qty), 1
  FROM order_lines l CROSS JOIN (VALUES (OLD.tier, -1), (NEW.tier, 1)) AS t (tier, sign)
  WHERE l.customer_id = NEW.customer_id AND l.backordered_qty > 0
  GROUP BY 1, 2, 3;
  RETURN NULL;
END $$
"""

PG_TRIGGERS = (
    "CREATE TRIGGER report_rollup_lines_inserted AFTER INSERT ON order_lines"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION oms_report_lines_inserted()",
    "CREATE TRIGGER report_rollup_lines_updated AFTER UPDATE ON order_lines"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION oms_report_lines_updated()",
    "CREATE TRIGGER report_rollup_tier_changed AFTER UPDATE OF tier ON customers FOR EACH ROW"
    " WHEN (OLD.tier IS DISTINCT FROM NEW.tier) EXECUTE FUNCTION oms_report_tier_changed()",
)

# ---- SQLite ----------------------------------------------------------------------------------------


def _sqlite_add(table: str, key: dict[str, str], adds: dict[str, str]) -> str:
    """Statements adding `adds` into the row of `table` at `key`, creating it first when missing."""
    # `IS` only where the key may be NULL: SQLite finds `=` faster through the index.
    match = " AND ".join(f"{k} {'IS' if k == 'backordered_day' else '='} {v}" for k, v in key.items())
    zeros = ", ".join(["0"] * len(adds))
    return (
        f"INSERT INTO {table} ({', '.join(key)}, {', '.join(adds)}, delta) SELECT {', '.join(key.values())}, {zeros}, 0"
        f" WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {match});\n"
        f"  UPDATE {table} SET {', '.join(f'{c} = {c} + ({e})' for c, e in adds.items())} WHERE {match};"
    )


def _sqlite_triggers() -> list[str]:
    taken = TAKEN.format(r="NEW")
    placed = _sqlite_add(
        "report_placed_rollup",
        {"placed_day": "date(NEW.placed_at)", "backordered_day": "date(NEW.backordered_at)", "channel": "NEW.channel"},
        {
            "lines": "1",
            "units_ordered": "NEW.qty",
            "units_taken": taken,
            "lines_filled": f"{taken} >= NEW.qty",
            "units_backordered": f"CASE WHEN NEW.backordered_at IS NULL THEN 0 ELSE NEW.qty - ({taken}) END",
        },
    )
    by_sku = _sqlite_add(
        "report_sku_rollup",
        {"sku": "NEW.sku", "channel": "NEW.channel"},
        {"lines": "1", "units_ordered": "NEW.qty", "units_taken": taken, "lines_filled": f"{taken} >= NEW.qty"},
    )
    tier = "(SELECT tier FROM customers WHERE customer_id = NEW.customer_id)"
    pending_key = {"placed_hour": SQLITE_HOUR.format(c="NEW.placed_at"), "channel": "NEW.channel", "tier": tier}
    waiting = _sqlite_add(
        "report_pending_rollup",
        pending_key,
        {"lines": "1", "units": "NEW.backordered_qty", "value": "NEW.unit_price * NEW.backordered_qty"},
    )
    changed = _sqlite_add(
        "report_pending_rollup",
        pending_key,
        {
            "lines": "(NEW.backordered_qty > 0) - (OLD.backordered_qty > 0)",
            "units": "max(NEW.backordered_qty, 0) - max(OLD.backordered_qty, 0)",
            "value": "NEW.unit_price * max(NEW.backordered_qty, 0) - OLD.unit_price * max(OLD.backordered_qty, 0)",
        },
    )
    # A line that was waiting is counted in its row already: the common case (an allocation)
    # needs only the UPDATE, not the check for a missing row.
    changed_waiting = changed.split("\n", 1)[1].strip()
    # A customer's new tier: its waiting lines move from the old tier's rows to the new tier's.
    mine = (
        "FROM order_lines l WHERE l.customer_id = NEW.customer_id AND l.backordered_qty > 0"
        f" AND {SQLITE_HOUR.format(c='l.placed_at')} = report_pending_rollup.placed_hour"
        " AND l.channel = report_pending_rollup.channel"
    )

    def move(sign: str, tier_of: str) -> str:
        return (
            f"UPDATE report_pending_rollup SET lines = lines {sign} (SELECT count(*) {mine}),"
            f" units = units {sign} (SELECT coalesce(sum(l.backordered_qty), 0) {mine}),"
            f" value = value {sign} (SELECT coalesce(sum(l.unit_price * l.backordered_qty), 0) {mine})"
            f" WHERE tier = {tier_of} AND EXISTS (SELECT 1 {mine});"
        )

    return [
        f"CREATE TRIGGER report_rollup_line_placed AFTER INSERT ON order_lines BEGIN\n  {placed}\n  {by_sku}\nEND",
        "CREATE TRIGGER report_rollup_line_waiting AFTER INSERT ON order_lines WHEN NEW.backordered_qty > 0"
        f" BEGIN\n  {waiting}\nEND",
        "CREATE TRIGGER report_rollup_line_changed AFTER UPDATE OF backordered_qty ON order_lines"
        f" WHEN NEW.backordered_qty <> OLD.backordered_qty AND OLD.backordered_qty > 0 BEGIN\n  {changed_waiting}\nEND",
        "CREATE TRIGGER report_rollup_line_rewaiting AFTER UPDATE OF backordered_qty ON order_lines"
        f" WHEN NEW.backordered_qty > 0 AND OLD.backordered_qty <= 0 BEGIN\n  {changed}\nEND",
        "CREATE TRIGGER report_rollup_tier_changed AFTER UPDATE OF tier ON customers WHEN NEW.tier <> OLD.tier BEGIN\n"
        f"  {move('-', 'OLD.tier')}\n"
        "  INSERT INTO report_pending_rollup (placed_hour, channel, tier, lines, units, value, delta)"
        f" SELECT DISTINCT {SQLITE_HOUR.format(c='l.placed_at')}, l.channel, NEW.tier, 0, 0, 0, 0 FROM order_lines l"
        " WHERE l.customer_id = NEW.customer_id AND l.backordered_qty > 0 AND NOT EXISTS (SELECT 1 FROM"
        f" report_pending_rollup r WHERE r.placed_hour = {SQLITE_HOUR.format(c='l.placed_at')} AND r.channel = l.channel"
        " AND r.tier = NEW.tier);\n"
        f"  {move('+', 'NEW.tier')}\nEND",
    ]


SQLITE_TRIGGER_NAMES = (
    "report_rollup_line_placed",
    "report_rollup_line_waiting",
    "report_rollup_line_changed",
    "report_rollup_line_rewaiting",
    "report_rollup_tier_changed",
)

# ---- the first fill: a recount of the existing lines -------------------------------------------------


def _fill(day: str, hour: str) -> list[str]:
    # Placing an order writes at most one placement allocation per line.
    lines = (
        "SELECT l.qty, l.placed_at, l.backordered_at, l.channel, l.sku, CASE WHEN l.backordered_at IS NULL"
        " THEN l.qty ELSE coalesce(a.qty, 0) END AS taken FROM order_lines l LEFT JOIN allocations a"
        " ON a.line_id = l.id AND a.source = 'placement'"
    )
    return [
        "INSERT INTO report_placed_rollup (placed_day, backordered_day, channel, lines, units_ordered, units_taken,"
        " lines_filled, units_backordered, delta)"
        f" SELECT {day.format(c='placed_at')}, {day.format(c='backordered_at')}, channel, count(*), sum(qty),"
        " sum(taken), sum(CASE WHEN taken >= qty THEN 1 ELSE 0 END),"
        f" sum(CASE WHEN backordered_at IS NULL THEN 0 ELSE qty - taken END), 0 FROM ({lines}) x GROUP BY 1, 2, 3",
        "INSERT INTO report_sku_rollup (sku, channel, lines, units_ordered, units_taken, lines_filled, delta)"
        " SELECT sku, channel, count(*), sum(qty), sum(taken), sum(CASE WHEN taken >= qty THEN 1 ELSE 0 END), 0"
        f" FROM ({lines}) x GROUP BY 1, 2",
        "INSERT INTO report_pending_rollup (placed_hour, channel, tier, lines, units, value, delta)"
        f" SELECT {hour.format(c='l.placed_at')}, l.channel, c.tier, count(*), sum(l.backordered_qty),"
        " sum(l.unit_price * l.backordered_qty), 0 FROM order_lines l JOIN customers c"
        " ON c.customer_id = l.customer_id WHERE l.backordered_qty > 0 GROUP BY 1, 2, 3",
    ]


def upgrade() -> None:
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "report_placed_rollup",
        sa.Column("id", id_type, autoincrement=True, nullable=False),
        sa.Column("placed_day", sa.Date(), nullable=False),
        sa.Column("backordered_day", sa.Date(), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("units_ordered", sa.Integer(), nullable=False),
        sa.Column("units_taken", sa.Integer(), nullable=False),
        sa.Column("lines_filled", sa.Integer(), nullable=False),
        sa.Column("units_backordered", sa.Integer(), nullable=False),
        sa.Column("delta", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_placed_rollup")),
    )
    op.create_index("ix_report_placed_rollup_key", "report_placed_rollup", ["placed_day", "channel"])
    op.create_table(
        "report_sku_rollup",
        sa.Column("id", id_type, autoincrement=True, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("units_ordered", sa.Integer(), nullable=False),
        sa.Column("units_taken", sa.Integer(), nullable=False),
        sa.Column("lines_filled", sa.Integer(), nullable=False),
        sa.Column("delta", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_sku_rollup")),
    )
    op.create_index("ix_report_sku_rollup_key", "report_sku_rollup", ["sku", "channel"])
    op.create_table(
        "report_pending_rollup",
        sa.Column("id", id_type, autoincrement=True, nullable=False),
        sa.Column("placed_hour", oms.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("value", oms.store.types.Money(), nullable=False),
        sa.Column("delta", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_pending_rollup")),
    )
    op.create_index("ix_report_pending_rollup_key", "report_pending_rollup", ["placed_hour", "channel", "tier"])
    if op.get_context().dialect.name == "postgresql":
        for ddl in (PG_LINES_INSERTED, PG_LINES_UPDATED, PG_TIER_CHANGED, *PG_TRIGGERS):
            op.execute(ddl)
        fill = _fill(PG_DAY, PG_HOUR)
    else:
        for ddl in _sqlite_triggers():
            op.execute(ddl)
        fill = _fill("date({c})", SQLITE_HOUR)
    for sql in fill:
        op.execute(sql)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER report_rollup_tier_changed ON customers")
        op.execute("DROP TRIGGER report_rollup_lines_updated ON order_lines")
        op.execute("DROP TRIGGER report_rollup_lines_inserted ON order_lines")
        for fn in ("oms_report_tier_changed", "oms_report_lines_updated", "oms_report_lines_inserted"):
            op.execute(f"DROP FUNCTION {fn}()")
    else:
        for name in SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for table in ("report_pending_rollup", "report_sku_rollup", "report_placed_rollup"):
        op.drop_index(f"ix_{table}_key", table_name=table)
        op.drop_table(table)
