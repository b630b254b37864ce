"""The unit of work: one transaction with its clock, its actor, the events it records and the settings it reads.

A use case receives a `UnitOfWork` from `Store.write`, reads and writes through `uow.conn`, and
records what happened with `uow.event(...)`. The store writes the events when the use case returns
(the last statements before COMMIT) and rolls everything back when it raises, so no use case can
forget its events or leave half of them.

Settings (the allocation rule, the default back-order policy, the late-PO grace) are cached per
process in a `ConfigCache`, tagged with the `settings_version` row that every change to them bumps:
a transaction reads the version (alone, or inside its first statement through `version_column`)
and reloads the settings only when another transaction has changed them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, ScalarSelect, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from oms.domain.allocation import DEFAULT_RULE, RuleKey, parse_rule
from oms.domain.policy import DEFAULT_POLICY, BackorderPolicy, policy_from_json
from oms.settings import settings as environment
from oms.store.tables import event_batches, events, settings, settings_version

DEFAULT_POLICY_KEY = "default_backorder_policy"
RULE_KEY = "allocation_rule"
LATE_PO_GRACE_KEY = "late_po_grace_days"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Config:
    """The settings the use cases read, parsed, as of one settings version."""

    version: int
    rule: tuple[RuleKey, ...] = DEFAULT_RULE
    default_policy: BackorderPolicy = DEFAULT_POLICY
    late_po_grace_days: int = 0


def read_config(conn: Connection, version: int) -> Config:
    """Every setting in one statement."""
    found = {r.key: r.value for r in conn.execute(select(settings.c.key, settings.c.value))}
    rule = found.get(RULE_KEY)
    grace = found.get(LATE_PO_GRACE_KEY)
    override = environment().late_po_grace_days
    return Config(
        version=version,
        rule=parse_rule(_json(rule)["keys"]) if rule else DEFAULT_RULE,
        default_policy=policy_from_json(_json(found.get(DEFAULT_POLICY_KEY))) or DEFAULT_POLICY,
        late_po_grace_days=override
        if override is not None
        else (int(_json(grace)["days"]) if grace and isinstance(_json(grace).get("days"), int) else 0),
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _version() -> Any:
    # 0 when the row is missing (a store emptied by hand): the first change writes it back.
    return select(func.coalesce(func.max(settings_version.c.version), 0))


def version_column() -> ScalarSelect[Any]:
    """The settings version as a column, for a use case's first statement to carry (see `saw_version`)."""
    return _version().scalar_subquery()  # type: ignore[no-any-return]


class ConfigCache:
    """This process's parsed settings, reloaded only when the settings version has moved."""

    def __init__(self) -> None:
        self._config: Config | None = None
        self._lock = threading.Lock()

    def get(self, conn: Connection, version: int) -> Config:
        with self._lock:
            current = self._config
        if current is not None and current.version == version:
            return current
        fresh = read_config(conn, version)
        with self._lock:
            if self._config is None or self._config.version <= version:
                self._config = fresh
        return fresh

    def current(self, conn: Connection) -> Config:
        """The settings as of now, for reads outside a unit of work."""
        return self.get(conn, read_version(conn))


def bump_version(conn: Connection) -> None:
    """Settings or API keys changed (in this transaction): caches keyed by the version are stale once it commits."""
    upsert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(settings_version)
    conn.execute(
        upsert.values(id=1, version=1).on_conflict_do_update(
            index_elements=["id"], set_={"version": settings_version.c.version + 1}
        )
    )


def read_version(conn: Connection) -> int:
    return int(conn.execute(_version()).scalar_one())


# A batch row and its transaction's events, in one statement (PostgreSQL).
WRITE_EVENTS = text(
    "WITH b AS (INSERT INTO event_batches (at) VALUES (:at) RETURNING id) "
    "INSERT INTO events (batch_id, at, type, actor, order_number, sku, po_number, data) "
    "SELECT b.id, v.at, v.type, v.actor, v.order_number, v.sku, v.po_number, v.data "
    "FROM b, json_to_recordset(CAST(:rows AS json)) AS v(at timestamptz, type varchar, "
    "actor varchar, order_number varchar, sku varchar, po_number varchar, data json, n bigint) "
    "ORDER BY v.n"
)


@dataclass(frozen=True)
class Event:
    at: datetime
    type: str
    actor: str
    data: dict[str, Any]
    order_number: str | None = None
    sku: str | None = None
    po_number: str | None = None


class UnitOfWork:
    """One use case's transaction, clock, actor, events and settings (see the module docstring)."""

    def __init__(self, conn: Connection, cache: ConfigCache, actor: str = "system", now: datetime | None = None):
        self.conn = conn
        self.actor = actor
        self._cache = cache
        self._now = now
        self._config: Config | None = None
        self.events: list[Event] = []

    @property
    def now(self) -> datetime:
        """The use case's time, read from the clock once, when first asked.

        Placement asks only after it holds its SKUs' locks, so orders for a hot SKU are placed (and
        queue) in the order they got the stock.
        """
        if self._now is None:
            self._now = utcnow()
        return self._now

    @property
    def today(self) -> date:
        return self.now.date()

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name

    # ---- settings -------------------------------------------------------------------------------

    def config(self) -> Config:
        if self._config is None:
            self._config = self._cache.get(self.conn, read_version(self.conn))
        return self._config

    def saw_version(self, version: int) -> None:
        """The settings version, read by one of the use case's own statements (saves a round trip)."""
        if self._config is None or self._config.version != version:
            self._config = self._cache.get(self.conn, int(version))

    def rule(self) -> tuple[RuleKey, ...]:
        return self.config().rule

    def default_policy(self) -> BackorderPolicy:
        return self.config().default_policy

    def put_setting(self, key: str, value: Any) -> int:
        """Change a setting; returns its new version. Every process reloads at its next transaction."""
        row = self.conn.execute(select(settings.c.version).where(settings.c.key == key)).first()
        if row is None:
            self.conn.execute(insert(settings).values(key=key, value=value, version=1))
            version = 1
        else:
            version = row.version + 1
            self.conn.execute(update(settings).where(settings.c.key == key).values(value=value, version=version))
        self.settings_changed()
        return version

    def settings_changed(self) -> None:
        """Bump the settings version: every process reloads what it caches at its next transaction."""
        bump_version(self.conn)
        self._config = None

    # ---- events ---------------------------------------------------------------------------------

    def event(
        self,
        type_: str,
        data: Mapping[str, Any],
        *,
        order_number: str | None = None,
        sku: str | None = None,
        po_number: str | None = None,
    ) -> Event:
        """Record an append-only event; the store writes it with the transaction."""
        recorded = Event(self.now, type_, self.actor, dict(data), order_number, sku, po_number)
        self.events.append(recorded)
        return recorded

    def write_events(self) -> None:
        """One batch row and the events that name it: one statement on PostgreSQL, two on SQLite."""
        if not self.events:
            return
        rows = [
            {
                "at": e.at,
                "type": e.type,
                "actor": e.actor,
                "order_number": e.order_number,
                "sku": e.sku,
                "po_number": e.po_number,
                "data": e.data,
            }
            for e in self.events
        ]
        self.events = []
        if self.dialect == "postgresql":
            self.conn.execute(
                WRITE_EVENTS,
                {
                    "at": self.now,
                    "rows": json.dumps(
                        [r | {"n": i} for i, r in enumerate(rows)], default=_json_value, separators=(",", ":")
                    ),
                },
            )
            return
        batch_id = self.conn.execute(insert(event_batches).values(at=self.now).returning(event_batches.c.id)).scalar()
        self.conn.execute(insert(events), [r | {"batch_id": batch_id} for r in rows])


def _json_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return str(v)  # Decimal
