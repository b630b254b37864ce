"""Queue jumping: a channel key may not set what orders a back-order queue, on both stores.

Every field of an order that sets its lines' place in a queue (priority, placed_at, the value through
a line's unit_price) is refused to channel keys with a 403 naming each such field, and nothing is
stored; ops and admin keys may send them. A placed_at in the future is refused to everyone (422).
An order a channel places without them waits behind every older order and is served after them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from oms.domain.access import Role

from .common import PROBLEM, snapshot
from .test_injection import day, ok

OLD = "2000-01-01T00:00:00Z"


def _set_up(api: Any) -> None:
    """JUMP-1: always back-orderable, nothing on the shelf; C-1; SO-OLD already waiting for 1 unit."""
    ok(api.put("/products/JUMP-1", {"name": "Jump", "unit_price": "10.00", "backorder_policy": {"mode": "always"}}))
    ok(api.put("/customers/C-1", {"name": "Carol", "email": "carol@example.com"}))
    ok(api.post("/orders", {"order_number": "SO-OLD", "channel": "web", "customer_id": "C-1", "lines": [_line()]}))


def _line(**extra: Any) -> dict[str, Any]:
    return {"sku": "JUMP-1", "qty": 1, **extra}


def _order(number: str, **fields: Any) -> dict[str, Any]:
    lines = fields.pop("lines", [_line()])
    return {"order_number": number, "channel": "web", "customer_id": "C-1", "lines": lines, **fields}


def _refused_fields(r: Any) -> set[str]:
    assert r.headers["content-type"] == PROBLEM, r.text
    return {e["field"] for e in r.json().get("errors", [])}


def test_a_channel_key_is_refused_every_field_that_sets_a_place_in_the_queue_and_nothing_is_stored(api):
    _set_up(api)
    web = api.as_role(Role.CHANNEL, channel="web")
    before = snapshot(api.store)
    attempts = [
        ({"priority": 1000}, {"priority"}),
        ({"priority": 0}, {"priority"}),  # the field is not the key's to send, whatever its value
        ({"placed_at": OLD}, {"placed_at"}),
        ({"lines": [_line(unit_price="9999.00")]}, {"lines.0.unit_price"}),
        (
            {"priority": 5, "placed_at": OLD, "lines": [_line(), _line(unit_price="1.00")]},
            {"priority", "placed_at", "lines.1.unit_price"},
        ),
    ]
    for n, (fields, named) in enumerate(attempts):
        r = web.post("/orders", _order(f"SO-JUMP-{n}", **fields))
        assert r.status_code == 403, (fields, r.text)
        assert _refused_fields(r) == named, (fields, r.text)
        for field in named:
            assert field in r.json()["detail"]
    assert snapshot(api.store) == before

    # Without them the channel's order is placed, and waits behind the older order.
    ok(web.post("/orders", _order("SO-NEW")), 201)
    queue = ok(api.get("/backorders", params={"sku": "JUMP-1"}))["items"]
    assert [(i["order_number"], i["queue_position"]) for i in queue] == [("SO-OLD", 1), ("SO-NEW", 2)]
    receipt = ok(api.post("/receipts", {"grn_number": "G-1", "lines": [{"sku": "JUMP-1", "qty": 1}]}), 201)
    assert [a["order_number"] for a in receipt["allocations"]] == ["SO-OLD"]


def test_ops_and_admin_keys_may_set_priority_placed_at_and_prices(api):
    _set_up(api)
    ops = api.as_role(Role.OPS)
    body = _order("SO-OPS", priority=7, placed_at=OLD, lines=[_line(unit_price="12.50")])
    placed = ok(ops.post("/orders", body), 201)
    assert (placed["priority"], placed["placed_at"], placed["order_value"]) == (7, OLD, "12.50")
    ok(api.post("/orders", _order("SO-ADM", priority=9)), 201)
    queue = ok(api.get("/backorders", params={"sku": "JUMP-1"}))["items"]
    assert [i["order_number"] for i in queue] == ["SO-ADM", "SO-OPS", "SO-OLD"]


def test_a_placed_at_in_the_future_is_refused_to_every_role_and_nothing_is_stored(api):
    _set_up(api)
    ops, web = api.as_role(Role.OPS), api.as_role(Role.CHANNEL, channel="web")
    before = snapshot(api.store)
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    for caller in (api, ops):
        r = caller.post("/orders", _order("SO-FUTURE", placed_at=soon))
        assert r.status_code == 422, r.text
        assert _refused_fields(r) == {"placed_at"}
    r = web.post("/orders", _order("SO-FUTURE", placed_at=soon))
    assert r.status_code in (403, 422), r.text
    assert "placed_at" in _refused_fields(r)
    assert snapshot(api.store) == before
    ok(api.post("/orders", _order("SO-PAST", placed_at=f"{day(-1)}T08:00:00Z")), 201)


def test_every_allocation_rule_key_is_mapped_to_the_order_fields_that_feed_it():
    """A rule key added later must say which order fields set it, so channel keys are refused them too."""
    from oms.api.schemas import QUEUE_FIELDS
    from oms.domain.allocation import RuleKey

    assert set(QUEUE_FIELDS) == set(RuleKey)
