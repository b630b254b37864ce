"""cancelled events carry a reason code next to their free-text reason

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 07:00:00

Every `cancelled` event recorded before this revision gets `reason_code` in its data, read from its
free text by the rule cancellations without a code follow today (`oms.domain.fulfillment.reason_code_of`,
copied here so that the migration keeps meaning what it meant): the reports count codes, not words.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_AGED_WORDS = ("aged", "auto-cancel", "auto cancel", "autocancel", "auto_cancel", "expired", "too long", "older than")
_CUSTOMER_WORDS = ("customer", "buyer", "client", "changed mind", "changed their mind", "no longer want")
BATCH = 5000


def _code(reason: str | None) -> str:
    text = (reason or "").lower()
    if any(w in text for w in _AGED_WORDS):
        return "aged_out"
    if any(w in text for w in _CUSTOMER_WORDS):
        return "customer"
    return "operations"


def _rewrite(add: bool) -> None:
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.text("SELECT id, data FROM events WHERE type = 'cancelled' AND id > :last ORDER BY id LIMIT :n"),
            {"last": last, "n": BATCH},
        ).all()
        if not rows:
            return
        changes = []
        for event_id, data in rows:
            value = json.loads(data) if isinstance(data, str) else dict(data)
            if add and "reason_code" not in value:
                value["reason_code"] = _code(value.get("reason"))
            elif not add and "reason_code" in value:
                del value["reason_code"]
            else:
                continue
            changes.append({"id": event_id, "data": json.dumps(value)})
        if changes:
            cast = "CAST(:data AS json)" if conn.dialect.name == "postgresql" else ":data"
            conn.execute(sa.text(f"UPDATE events SET data = {cast} WHERE id = :id"), changes)
        last = rows[-1][0]


def upgrade() -> None:
    _rewrite(add=True)


def downgrade() -> None:
    _rewrite(add=False)
