"""Hostile values and a whole-store snapshot, shared by the hostile-input tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect, select, text

from oms.store.db import Store
from oms.store.tables import api_keys, metadata

SQL = [
    "' OR '1'='1",
    "'; DROP TABLE orders; --",
    '" OR 1=1 --',
    "Robert'); DROP TABLE customers;--",
    "1; SELECT pg_sleep(5); --",
    "%' UNION SELECT key_hash FROM api_keys --",
    "\\'; DELETE FROM products WHERE '1'='1",
]
SCRIPT = "<script>alert(1)</script>"
HTML = [
    SCRIPT,
    '"><img src=x onerror=alert(1)>',
    "<svg/onload=alert('x')>",
    "</textarea></title><script>x()</script>",
    "{{ 7*7 }}{% raw %}${7*7}",
    "&lt;already escaped&gt; &amp;",
    "javascript:alert(document.cookie)",
]
ODD = [
    "\u202etxt.exe",  # right-to-left override
    "Zelt für zwei ✓ 日本 😀",
    "line one\nline two\ttabbed",
    "  spaces around  ",
    "-- /* */ ; \\ % _",
]
HOSTILE = SQL + HTML + ODD
PROBLEM = "application/problem+json"


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in the store, in primary-key order.

    Left out: a key's last use (a usage clock). The reports' rollups are in: reads never fold them."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as conn:
        for name in inspect(conn).get_table_names():
            table = metadata.tables.get(name)
            if table is None:  # Alembic's own table, or one this checkout's metadata does not name
                rows = conn.execute(text(f'SELECT * FROM "{name}"')).all()
                out[name] = sorted((tuple(r) for r in rows), key=repr)
                continue
            cols = [c for c in table.c if not (table is api_keys and c.name == "last_used_at")]
            rows = conn.execute(select(*cols).order_by(*table.primary_key.columns)).all()
            out[name] = [tuple(r) for r in rows]
    return out
