"""A Hypothesis state machine over the engine's use cases, checking the rules after every step.

The machine drives the services directly (no HTTP), each step in its own transaction as the API
does, and after every step reads the database back with plain SQL to check the invariants of
PRODUCT.md rules 1-8. Refusals (DomainError) are expected exactly where a rule refuses, and must
leave every table as it was.

The state read after a step is also the "before" of the next step: each step predicts its outcome
from it (what placement allocates, which queue lines a receipt fills, where cancelled units come
from) and checks the prediction.

OMS_STATEFUL_EXAMPLES sets the number of examples per store (default 25; `make soak` raises it),
OMS_STATEFUL_STEPS the steps per example (default 30).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import event as note
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Connection, Date, text

from oms.catalog.use_cases import CustomerSpec, ProductSpec, adjust_stock, put_customer, put_product
from oms.catalog.use_cases import set_allocation_rule as set_rule
from oms.domain.allocation import DEFAULT_RULE, QueueLine, RuleKey, Tier, order_queue
from oms.domain.errors import Conflict, DomainError, IllegalTransition, InsufficientStock, Invalid
from oms.domain.fulfillment import ShipPolicy
from oms.domain.policy import BackorderMode, BackorderPolicy
from oms.fulfillment.use_cases import advance_shipment
from oms.fulfillment.views import shipment_json
from oms.orders.use_cases import NewLine, PlaceOrder, cancel_order, place_order, set_priority
from oms.orders.views import order_json
from oms.replenishment.use_cases import PoLine, ReceiptLine, create_po, receive_goods
from oms.store.db import Store
from oms.store.tables import metadata
from oms.store.types import Money, UTCDateTime
from oms.store.uow import UnitOfWork as Ctx

EXAMPLES = int(os.environ.get("OMS_STATEFUL_EXAMPLES", "25"))
STEPS = int(os.environ.get("OMS_STATEFUL_STEPS", "30"))
UNBOUNDED = 10**9


@dataclass(frozen=True)
class Sku:
    sku: str
    price: Decimal
    lead_time_days: int | None
    mode: BackorderMode
    max_backorder_qty: int | None = None


SKUS = {
    s.sku: s
    for s in (
        Sku("SKU-A", Decimal("10.00"), 10, BackorderMode.ALWAYS),
        Sku("SKU-B", Decimal("25.50"), None, BackorderMode.NEVER),
        Sku("SKU-C", Decimal("7.25"), 20, BackorderMode.WHEN_INCOMING),
        Sku("SKU-D", Decimal("99.99"), None, BackorderMode.ALWAYS, max_backorder_qty=6),
    )
}
SKU_NAMES = sorted(SKUS)
# Order lines and receipts favour the SKUs that back-order freely, so that queues of several lines form.
some_sku = st.sampled_from(["SKU-A", "SKU-A", "SKU-A", "SKU-A", "SKU-B", "SKU-C", "SKU-D", "SKU-D"])
CUSTOMERS = ["CUST-1", "CUST-2", "CUST-3", "CUST-4"]
CHANNELS = ["web", "pos", "b2b"]
OPEN_SHIPMENT = ("pick", "pack", "awaiting_shipment")
NEXT_STATUS = {"pick": "pack", "pack": "awaiting_shipment", "awaiting_shipment": "dispatched"}
START = datetime(2030, 3, 2, 9, 0, tzinfo=UTC)


def as_json(value: Any) -> Any:
    """JSON columns come back decoded on PostgreSQL and as text on SQLite."""
    return json.loads(value) if isinstance(value, str) else value


# ---- the database as plain SQL reads it -----------------------------------------------------------

LINES_SQL = text(
    "SELECT id, order_id, order_number, line_no, sku, qty, allocated_qty, backordered_qty, shipped_qty, "
    "cancelled_qty, released_qty, customer_id, priority, tier_rank, order_value, placed_at, promised_date "
    "FROM order_lines ORDER BY id"
).columns(order_value=Money(), placed_at=UTCDateTime(), promised_date=Date())


@dataclass
class World:
    stock: dict[str, Any]  # sku -> (on_hand, allocated, backordered)
    moved: dict[str, int]  # sku -> sum of all stock movements
    dispatch_moved: dict[str, int]  # sku -> sum of dispatch movements
    lines: list[Any]
    allocations: list[Any]  # id, line_id, sku, qty, source
    cancelled_events: list[tuple[str, dict[str, Any]]]  # (order number, data)
    orders: list[Any]
    shipments: list[Any]
    shipment_lines: list[Any]
    po_lines: list[Any]  # with their PO's number and status
    rule_setting: Any

    @classmethod
    def read(cls, conn: Connection) -> World:
        def q(sql: str) -> list[Any]:
            return list(conn.execute(text(sql)))

        moved: dict[str, int] = dict.fromkeys(SKUS, 0)
        dispatch_moved: dict[str, int] = dict.fromkeys(SKUS, 0)
        for sku, kind, n in q("SELECT sku, kind, SUM(qty_delta) FROM stock_movements GROUP BY sku, kind"):
            moved[sku] += int(n)
            if kind == "dispatch":
                dispatch_moved[sku] += int(n)
        return cls(
            stock={r.sku: r for r in q("SELECT sku, on_hand, allocated, backordered FROM products")},
            moved=moved,
            dispatch_moved=dispatch_moved,
            lines=list(conn.execute(LINES_SQL)),
            allocations=q("SELECT id, line_id, sku, qty, source FROM allocations ORDER BY id"),
            cancelled_events=[
                (o, as_json(d)) for o, d in q("SELECT order_number, data FROM events WHERE type = 'cancelled'")
            ],
            orders=q("SELECT id, order_number, ship_policy, status, priority FROM orders ORDER BY id"),
            shipments=q("SELECT id, order_id, status, carrier, tracking_number FROM shipments ORDER BY id"),
            shipment_lines=q("SELECT id, shipment_id, line_id, sku, qty FROM shipment_lines ORDER BY id"),
            po_lines=q(
                "SELECT p.po_number, p.status, l.sku, l.qty, l.received_qty, l.open "
                "FROM po_lines l JOIN purchase_orders p ON p.id = l.po_id ORDER BY l.id"
            ),
            rule_setting=conn.execute(text("SELECT value FROM settings WHERE key = 'allocation_rule'")).scalar(),
        )

    def queue(self, sku: str, rule: tuple[RuleKey, ...]) -> list[QueueLine]:
        """A SKU's waiting lines in the order the domain's order_queue gives for the rule."""
        return order_queue(
            rule,
            [
                QueueLine(
                    line_id=r.id,
                    order_number=r.order_number,
                    line_no=r.line_no,
                    sku=r.sku,
                    backordered_qty=r.backordered_qty,
                    priority=r.priority,
                    tier_rank=r.tier_rank,
                    order_value=r.order_value,
                    placed_at=r.placed_at,
                    promised_date=r.promised_date,
                )
                for r in self.lines
                if r.sku == sku and r.backordered_qty > 0
            ],
        )

    def incoming(self, sku: str) -> int:
        return sum(r.qty - r.received_qty for r in self.po_lines if r.sku == sku and r.open == 1 and r.status == "open")

    def lines_of(self, order_number: str) -> dict[int, Any]:
        return {r.line_no: r for r in self.lines if r.order_number == order_number}

    def in_pick(self, line_id: int) -> int:
        picking = {s.id for s in self.shipments if s.status == "pick"}
        return sum(sl.qty for sl in self.shipment_lines if sl.line_id == line_id and sl.shipment_id in picking)


def snapshot(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show that a refused request changed nothing."""
    return {
        t.name: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t.name} ORDER BY 1"))]
        for t in metadata.sorted_tables
    }


def expected_plan(queue: list[QueueLine], units: int) -> list[tuple[str, int, int]]:
    """Rule 4: units go to the queue head first, a line may be filled in part, nothing is skipped."""
    out = []
    for line in queue:
        if units <= 0:
            break
        qty = min(units, line.backordered_qty)
        out.append((line.order_number, line.line_no, qty))
        units -= qty
    return out


def backorder_room(sku: str, backordered: int, incoming: int) -> int:
    """Rule 3, for the policies this machine uses (no channels, no per-line cap, no pre-orders)."""
    spec = SKUS[sku]
    room = {
        BackorderMode.ALWAYS: UNBOUNDED,
        BackorderMode.NEVER: 0,
        BackorderMode.WHEN_INCOMING: max(0, incoming - backordered),
    }[spec.mode]
    if spec.max_backorder_qty is not None:
        room = min(room, max(0, spec.max_backorder_qty - backordered))
    return room


def derived_status(lines: list[Any]) -> str:
    if any(r.backordered_qty > 0 for r in lines):
        return "backordered"
    if all(r.cancelled_qty == r.qty for r in lines):
        return "cancelled"
    if all(r.shipped_qty == r.qty - r.cancelled_qty for r in lines):
        return "dispatched"
    return "in_fulfillment"


def plan_rows(allocations: list[dict[str, Any]], sku: str | None = None) -> list[tuple[str, int, int]]:
    return [(a["order_number"], a["line_no"], a["qty"]) for a in allocations if sku is None or a["sku"] == sku]


# ---- the machine ----------------------------------------------------------------------------------


class EngineMachine(RuleBasedStateMachine):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self._empty_store()
        self.clock = START
        self.rule: tuple[RuleKey, ...] = DEFAULT_RULE
        self.tiers: dict[str, Tier] = {}
        self.order_numbers: list[str] = []
        self.po_numbers: list[str] = []
        self.grn_seq = 0
        # The model's own count of stock: receipts + adjustments - dispatched units.
        self.on_hand: dict[str, int] = dict.fromkeys(SKUS, 0)
        # Units cancelled out of allocation per (order number, line no), predicted from the state
        # before each cancellation: back-ordered units go first, then allocated ones.
        self.cancelled_alloc: dict[tuple[str, int], int] = defaultdict(int)
        self.max_alloc_id = 0
        # What the PO lines' received quantities must be after a receipt against a PO.
        self.expect_received: tuple[str, dict[str, int]] | None = None
        products = [
            ProductSpec(
                s.sku,
                f"Product {s.sku}",
                s.price,
                s.lead_time_days,
                BackorderPolicy(mode=s.mode, max_backorder_qty=s.max_backorder_qty),
            )
            for s in SKUS.values()
        ]
        self._write(lambda c: [put_product(c, p) for p in products])  # one transaction: examples start fast
        self.world = self.store.read(World.read)  # the state before the next step

    # -- plumbing --

    def _empty_store(self) -> None:
        with self.store.engine.begin() as conn:
            if self.store.dialect == "postgresql":
                names = ", ".join(t.name for t in metadata.sorted_tables)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for t in reversed(metadata.sorted_tables):
                    conn.execute(text(f"DELETE FROM {t.name}"))

    def _write(self, use_case: Callable[[Ctx], Any]) -> Any:
        self.clock += timedelta(minutes=7)  # placed_at and event times strictly increase
        now = self.clock
        return self.store.write(use_case, actor="hypothesis", now=now)

    def _refused(self, use_case: Callable[[Ctx], Any], expected: type[DomainError]) -> DomainError:
        """Run a use case that must be refused, and check that it changed nothing at all."""
        before = self.store.read(snapshot)
        try:
            self._write(use_case)
        except expected as exc:
            after = self.store.read(snapshot)
            assert after == before, f"a refused request ({type(exc).__name__}: {exc}) changed the database"
            note(f"refused: {type(exc).__name__}")
            return exc
        raise AssertionError(f"expected {expected.__name__}, but the request was accepted")

    # -- set-up --

    @initialize(tiers=st.lists(st.sampled_from(list(Tier)), min_size=len(CUSTOMERS), max_size=len(CUSTOMERS)))
    def create_customers(self, tiers: list[Tier]) -> None:
        specs = [CustomerSpec(cid, cid, f"{cid}@example.com", t) for cid, t in zip(CUSTOMERS, tiers, strict=True)]
        self._write(lambda c: [put_customer(c, spec) for spec in specs])
        self.tiers = dict(zip(CUSTOMERS, tiers, strict=True))

    # -- steps --

    # Placing, receiving and cancelling move the queues: each has two rules, to be drawn more often.
    order_args = {
        "customer": st.sampled_from(CUSTOMERS),
        "lines": st.lists(st.tuples(some_sku, st.integers(1, 5)), min_size=1, max_size=3),
        "ship_policy": st.sampled_from(list(ShipPolicy)),
        "priority": st.integers(0, 3),
        "channel": st.sampled_from(CHANNELS),
    }
    receipt_args = {
        "data": st.data(),
        "lines": st.lists(st.tuples(some_sku, st.integers(1, 6)), min_size=1, max_size=2),
        "against_po": st.booleans(),
    }

    @rule(**order_args)
    def place(
        self, customer: str, lines: list[tuple[str, int]], ship_policy: ShipPolicy, priority: int, channel: str
    ) -> None:
        self._place(customer, lines, ship_policy, priority, channel)

    @rule(**order_args)
    def place_another(
        self, customer: str, lines: list[tuple[str, int]], ship_policy: ShipPolicy, priority: int, channel: str
    ) -> None:
        self._place(customer, lines, ship_policy, priority, channel)

    @rule(**receipt_args)
    def receive(self, data: st.DataObject, lines: list[tuple[str, int]], against_po: bool) -> None:
        self._receive(data, lines, against_po)

    @rule(**receipt_args)
    def receive_more(self, data: st.DataObject, lines: list[tuple[str, int]], against_po: bool) -> None:
        self._receive(data, lines, against_po)

    def _place(
        self, customer: str, lines: list[tuple[str, int]], ship_policy: ShipPolicy, priority: int, channel: str
    ) -> None:
        order_number = f"SO-{len(self.order_numbers) + 1:05d}"
        # Rules 1 and 3: each line takes what is available, the rest waits if the policy allows,
        # else the whole order is refused naming the SKUs.
        w = self.world
        avail = {s: r.on_hand - r.allocated for s, r in w.stock.items()}
        back = {s: r.backordered for s, r in w.stock.items()}
        predicted: list[tuple[int, int]] = []
        short: set[str] = set()
        for sku, qty in lines:
            take = min(qty, max(0, avail[sku]))
            rest = qty - take
            if rest > backorder_room(sku, back[sku], w.incoming(sku)):
                short.add(sku)
            predicted.append((take, rest))
            avail[sku] -= take
            back[sku] += rest
        cmd = PlaceOrder(
            order_number=order_number,
            channel=channel,
            customer_id=customer,
            lines=[NewLine(sku, qty) for sku, qty in lines],
            ship_policy=ship_policy,
            priority=priority,
        )
        if short:
            exc = self._refused(lambda c: place_order(c, cmd), InsufficientStock)
            assert {e["sku"] for e in exc.errors} == short, f"refusal names {exc.errors}, expected {short}"
            return
        placed = self._write(lambda c: place_order(c, cmd))
        assert placed.created
        view = order_json(placed.order)
        self.order_numbers.append(order_number)
        got = [(x["allocated_qty"] + x["shipped_qty"], x["backordered_qty"]) for x in view["lines"]]
        assert got == predicted, f"placement split {got}, rules say {predicted}"
        note(f"placed ({'some units back-ordered' if any(rest for _, rest in predicted) else 'all allocated'})")

    def _receive(self, data: st.DataObject, lines: list[tuple[str, int]], against_po: bool) -> None:
        self.grn_seq += 1
        grn = f"GRN-{self.grn_seq:05d}"
        po_number = data.draw(st.sampled_from(self.po_numbers)) if against_po and self.po_numbers else None
        qty_by_sku: dict[str, int] = defaultdict(int)
        for sku, qty in lines:
            qty_by_sku[sku] += qty
        w = self.world
        receipt = self._write(
            lambda c: receive_goods(c, grn, [ReceiptLine(s, q) for s, q in lines], po_number=po_number)
        )
        assert receipt.created
        result = receipt.result
        for sku, qty in qty_by_sku.items():
            self.on_hand[sku] += qty
        # Rule 4 / invariant 6: the units went to each queue (read just before) in rule order, head
        # first, exactly as far as they reach: no later line got units while an earlier one waits.
        for sku, qty in qty_by_sku.items():
            queue = w.queue(sku, self.rule)
            want = expected_plan(queue, w.stock[sku].on_hand - w.stock[sku].allocated + qty)
            got = plan_rows(result["allocations"], sku)
            assert got == want, f"{sku}: receipt allocated {got}, queue order (rule {self.rule}) says {want}"
            if len(queue) > 1:
                left = sum(q.backordered_qty for q in queue) - sum(n for _, _, n in got)
                note(f"receipt into a queue of several lines ({'some still wait' if left else 'all filled'})")
        # A PO line counts received units up to its open quantity; the rest is just stock.
        if po_number is not None:
            counted = {
                r.sku: min(qty_by_sku.get(r.sku, 0), max(0, r.qty - r.received_qty) if r.open else 0)
                for r in w.po_lines
                if r.po_number == po_number
            }
            against = {x["sku"]: x["against_po"] for x in result["po_lines"] if x["sku"] in counted}
            assert against == {s: n for s, n in counted.items() if s in qty_by_sku}, f"{po_number}: {against}"
            self.expect_received = (po_number, {s: r + counted[s] for s, r in self._received(w, po_number).items()})

    @rule(
        skus=st.lists(st.sampled_from(SKU_NAMES), min_size=1, max_size=3, unique=True),
        qty=st.integers(1, 10),
        days=st.integers(1, 60),
    )
    def create_purchase_order(self, skus: list[str], qty: int, days: int) -> None:
        po_number = f"PO-{len(self.po_numbers) + 1:04d}"
        expected = (self.clock + timedelta(days=days)).date()
        self._write(lambda c: create_po(c, po_number, "Acme", [PoLine(s, qty, expected) for s in skus]))
        self.po_numbers.append(po_number)

    @rule(sku=st.sampled_from(SKU_NAMES), delta=st.integers(-4, 5).filter(bool))
    def adjust(self, sku: str, delta: int) -> None:
        row = self.world.stock[sku]
        if row.on_hand + delta < row.allocated:
            exc = self._refused(lambda c: adjust_stock(c, sku, delta, "count"), Conflict)
            assert exc.errors[0]["min_qty_delta"] == row.allocated - row.on_hand, exc.errors
            return
        result = self._write(lambda c: adjust_stock(c, sku, delta, "count"))
        self.on_hand[sku] += delta
        want = expected_plan(self.world.queue(sku, self.rule), row.on_hand + delta - row.allocated)
        got = plan_rows(result["allocations"])
        assert got == want, f"{sku}: adjustment allocated {got}, queue order (rule {self.rule}) says {want}"

    @precondition(lambda self: self.order_numbers)
    @rule(data=st.data(), whole=st.booleans(), qty=st.integers(1, 5))
    def cancel(self, data: st.DataObject, whole: bool, qty: int) -> None:
        self._cancel(data, whole, qty)

    @precondition(lambda self: self.order_numbers)
    @rule(data=st.data(), whole=st.booleans(), qty=st.integers(1, 5))
    def cancel_another(self, data: st.DataObject, whole: bool, qty: int) -> None:
        self._cancel(data, whole, qty)

    def _cancel(self, data: st.DataObject, whole: bool, qty: int) -> None:
        order_number = data.draw(st.sampled_from(self.order_numbers))
        w = self.world
        rows = w.lines_of(order_number)

        def cancellable(r: Any) -> int:  # back-ordered, allocated not released, or released but in pick
            return r.backordered_qty + (r.allocated_qty - r.released_qty) + w.in_pick(r.id)

        # (line no, units, of which back-ordered, of which allocated): back-ordered units go first.
        plan: list[tuple[int, int, int, int]] = []
        if whole:
            lines = None
            plan = [(n, cancellable(r), r.backordered_qty, cancellable(r) - r.backordered_qty) for n, r in rows.items()]
            plan = [p for p in plan if p[1]]
            refused = not plan
        else:
            line_no = data.draw(st.sampled_from(sorted(rows)))
            lines = [(line_no, qty)]
            r = rows[line_no]
            b = min(qty, r.backordered_qty)
            plan = [(line_no, qty, b, qty - b)]
            refused = qty > cancellable(r)
        if refused:
            self._refused(lambda c: cancel_order(c, order_number, "changed mind", lines), Conflict)
            return
        view = order_json(self._write(lambda c: cancel_order(c, order_number, "changed mind", lines)))
        after = {x["line_no"]: x for x in view["lines"]}
        for n, total, b, a in plan:
            self.cancelled_alloc[(order_number, n)] += a
            note("cancelled allocated units" if a else "cancelled back-ordered units only")
            r, x = rows[n], after[n]
            moved = (x["cancelled_qty"] - r.cancelled_qty, r.backordered_qty - x["backordered_qty"])
            moved += (r.allocated_qty - x["allocated_qty"], x["shipped_qty"] - r.shipped_qty)
            assert moved == (total, b, a, 0), f"{order_number}/{n}: cancelled, from back-ordered, allocated, shipped"
        event = self.store.read(
            lambda c: c.execute(
                text("SELECT data FROM events WHERE type = 'cancelled' AND order_number = :o ORDER BY id DESC LIMIT 1"),
                {"o": order_number},
            ).scalar_one()
        )
        recorded = [(x["line_no"], x["qty"], x["backordered"], x["allocated"]) for x in as_json(event)["lines"]]
        assert recorded == plan, f"{order_number}: cancelled event {recorded}, expected {plan}"

    @precondition(lambda self: self.world.shipments)
    @rule(data=st.data(), open_only=st.integers(0, 4), steps=st.integers(1, 3), with_tracking=st.integers(0, 9))
    def advance(self, data: st.DataObject, open_only: int, steps: int, with_tracking: int) -> None:
        """Move one shipment up to `steps` steps, each in its own transaction, checked after each."""
        heads = [s for s in self.world.shipments if s.status in OPEN_SHIPMENT or not open_only]
        if not heads:
            return
        sid = data.draw(st.sampled_from(heads)).id
        carrier, tracking = ("DHL", f"TRK{sid:06d}") if with_tracking else (None, None)
        for step in range(steps):
            if step:
                self.rules_hold()
            w = self.world
            status = next(s.status for s in w.shipments if s.id == sid)
            if status not in OPEN_SHIPMENT:  # dispatched and cancelled shipments are terminal (rule 7)
                self._refused(lambda c: advance_shipment(c, sid, carrier, tracking), IllegalTransition)
                return
            if status == "awaiting_shipment" and not with_tracking:  # dispatch needs carrier and tracking
                self._refused(lambda c: advance_shipment(c, sid, carrier, tracking), Invalid)
                return
            moved = self._write(lambda c: advance_shipment(c, sid, carrier, tracking))
            view = shipment_json(moved, moved.lines)
            assert view["status"] == NEXT_STATUS[status], f"shipment {sid}: {status} -> {view['status']}"
            note(f"shipment advanced to {view['status']}")
            if view["status"] == "dispatched":
                assert (view["carrier"], view["tracking_number"]) == (carrier, tracking)
                for sl in w.shipment_lines:
                    if sl.shipment_id == sid:
                        self.on_hand[sl.sku] -= sl.qty
                return

    @rule(keys=st.lists(st.sampled_from(list(RuleKey)), min_size=1, max_size=len(RuleKey), unique=True))
    def change_rule(self, keys: list[RuleKey]) -> None:
        self._write(lambda c: set_rule(c, [k.value for k in keys]))
        self.rule = tuple(keys)

    @rule(customer=st.sampled_from(CUSTOMERS), tier=st.sampled_from(list(Tier)))
    def change_tier(self, customer: str, tier: Tier) -> None:
        self._write(lambda c: put_customer(c, CustomerSpec(customer, customer, f"{customer}@example.com", tier)))
        self.tiers[customer] = tier  # every line of the customer must now carry the tier's rank

    @precondition(lambda self: self.order_numbers)
    @rule(data=st.data(), priority=st.integers(0, 3))
    def change_priority(self, data: st.DataObject, priority: int) -> None:
        order_number = data.draw(st.sampled_from(self.order_numbers))
        view = order_json(self._write(lambda c: set_priority(c, order_number, priority)))
        assert view["priority"] == priority, view  # the lines' copies are checked with the invariants

    # -- invariants, read after every step --

    @invariant()
    def rules_hold(self) -> None:
        before, w = self.world, self.store.read(World.read)
        self.world = w
        self._check_stock(w)
        self._check_lines(w)
        self._check_orders_and_shipments(w)
        self._check_purchase_orders(w)
        self._check_queue_order(before, w)

    def _check_stock(self, w: World) -> None:
        by_sku: dict[str, list[Any]] = defaultdict(list)
        for r in w.lines:
            by_sku[r.sku].append(r)
        freed = self._cancelled_from_allocation(w)
        alloc_by_sku: dict[str, int] = defaultdict(int)
        for a in w.allocations:
            alloc_by_sku[a.sku] += a.qty
        for sku, p in w.stock.items():
            mine = by_sku[sku]
            # 1. On hand is the sum of the SKU's stock movements, and the model's own count.
            assert p.on_hand == w.moved[sku], f"{sku}: on_hand {p.on_hand} != movements {w.moved[sku]}"
            assert p.on_hand == self.on_hand[sku], f"{sku}: on_hand {p.on_hand} != model {self.on_hand[sku]}"
            # 2. The counters agree with the lines they sum.
            assert 0 <= p.allocated <= p.on_hand, f"{sku}: allocated {p.allocated}, on hand {p.on_hand}"
            assert p.allocated == sum(r.allocated_qty for r in mine), f"{sku}: allocated counter drifted"
            assert p.backordered == sum(r.backordered_qty for r in mine), f"{sku}: backordered counter drifted"
            # 3. No idle stock while a customer waits (rule 2).
            waiting = [(r.order_number, r.line_no, r.backordered_qty) for r in mine if r.backordered_qty > 0]
            assert p.on_hand - p.allocated <= 0 or not waiting, (
                f"{sku}: {p.on_hand - p.allocated} units available while {waiting} wait"
            )
            # Rule 3: the SKU's policy is kept.
            spec = SKUS[sku]
            if spec.mode is BackorderMode.NEVER:
                assert p.backordered == 0, f"{sku} never back-orders, yet {p.backordered} units wait"
            if spec.max_backorder_qty is not None:
                assert p.backordered <= spec.max_backorder_qty, f"{sku}: {p.backordered} back-ordered, over the cap"
            # 5 (per SKU): see _check_lines; summed over the SKU's lines.
            shipped = sum(r.shipped_qty for r in mine)
            cancelled = sum(freed[(r.order_number, r.line_no)] for r in mine)
            assert alloc_by_sku[sku] == p.allocated + shipped + cancelled, (
                f"{sku}: allocations {alloc_by_sku[sku]} != allocated {p.allocated} + shipped {shipped} "
                f"+ cancelled out of allocation {cancelled}"
            )
            # Dispatch takes exactly the shipped units off the shelf.
            assert -w.dispatch_moved[sku] == shipped, (
                f"{sku}: dispatch moved {w.dispatch_moved[sku]}, shipped {shipped}"
            )

    @staticmethod
    def _cancelled_from_allocation(w: World) -> dict[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = defaultdict(int)
        for order_number, data in w.cancelled_events:
            for x in data["lines"]:
                out[(order_number, x["line_no"])] += x["allocated"]
        return out

    def _check_lines(self, w: World) -> None:
        freed = self._cancelled_from_allocation(w)
        cancelled_total: dict[tuple[str, int], int] = defaultdict(int)
        for order_number, data in w.cancelled_events:
            for x in data["lines"]:
                cancelled_total[(order_number, x["line_no"])] += x["qty"]
        alloc_by_line: dict[int, int] = defaultdict(int)
        for a in w.allocations:
            alloc_by_line[a.line_id] += a.qty
        status_of = {s.id: s.status for s in w.shipments}
        open_by_line: dict[int, int] = defaultdict(int)
        dispatched_by_line: dict[int, int] = defaultdict(int)
        for sl in w.shipment_lines:
            assert sl.qty >= 0, f"shipment line {sl.id} has {sl.qty} units"
            if status_of[sl.shipment_id] in OPEN_SHIPMENT:
                open_by_line[sl.line_id] += sl.qty
            elif status_of[sl.shipment_id] == "dispatched":
                dispatched_by_line[sl.line_id] += sl.qty
            else:
                assert status_of[sl.shipment_id] == "cancelled"
                assert sl.qty == 0, f"cancelled shipment {sl.shipment_id} still holds {sl.qty} units"
        for r in w.lines:
            key = (r.order_number, r.line_no)
            where = f"line {r.order_number}/{r.line_no} ({r.sku})"
            # 4. Every unit of a line is in exactly one place.
            assert min(r.allocated_qty, r.backordered_qty, r.shipped_qty, r.cancelled_qty, r.released_qty) >= 0, where
            assert r.qty == r.allocated_qty + r.backordered_qty + r.shipped_qty + r.cancelled_qty, where
            assert r.released_qty <= r.allocated_qty, where
            # 5. No unit allocated twice. Allocation rows are only ever added (placement, receipt,
            # adjustment, cancellation); dispatch moves units from allocated_qty to shipped_qty, and a
            # cancellation takes units out of allocated_qty without a negative allocation row, recording
            # them as the "allocated" part of the order's "cancelled" event. So, exactly:
            #   sum(allocations.qty of the line) == allocated_qty + shipped_qty + cancelled out of allocation
            # and the cancelled events account for every cancelled unit, their split agreeing with the
            # model's prediction (back-ordered units are cancelled first).
            assert freed[key] == self.cancelled_alloc.get(key, 0), where
            assert cancelled_total[key] == r.cancelled_qty, f"{where}: cancelled units not all recorded"
            assert alloc_by_line[r.id] == r.allocated_qty + r.shipped_qty + freed[key], (
                f"{where}: allocations {alloc_by_line[r.id]} != allocated {r.allocated_qty} + shipped "
                f"{r.shipped_qty} + cancelled out of allocation {freed[key]}"
            )
            # 6. Units in open shipments (pick, pack, awaiting shipment) are the line's released units.
            assert open_by_line[r.id] == r.released_qty, (
                f"{where}: open shipments hold {open_by_line[r.id]}, released_qty {r.released_qty}"
            )
            # 7. Dispatched shipments hold exactly the shipped units.
            assert dispatched_by_line[r.id] == r.shipped_qty, (
                f"{where}: dispatched shipments hold {dispatched_by_line[r.id]}, shipped {r.shipped_qty}"
            )
            # The line's copies of its queue keys follow the customer's tier.
            assert r.tier_rank == self.tiers[r.customer_id].rank, f"{where}: tier rank {r.tier_rank}"

    def _check_orders_and_shipments(self, w: World) -> None:
        lines_of: dict[int, list[Any]] = defaultdict(list)
        for r in w.lines:
            lines_of[r.order_id].append(r)
        has_shipment = {s.order_id for s in w.shipments}
        for h in w.orders:
            mine = lines_of[h.id]
            assert h.status == derived_status(mine), f"order {h.order_number}: status {h.status}"
            assert all(r.priority == h.priority for r in mine), f"order {h.order_number}: lines' priority"
            # Rule 6: ship-complete releases nothing while a line waits; otherwise every allocated
            # unit is released into a shipment at once (no SKU here has a release date).
            if h.ship_policy == "complete" and any(r.backordered_qty > 0 for r in mine):
                assert all(r.released_qty == 0 for r in mine), f"ship-complete {h.order_number} released early"
                assert h.id not in has_shipment, f"ship-complete {h.order_number} has a shipment while waiting"
            else:
                assert all(r.released_qty == r.allocated_qty for r in mine), (
                    f"order {h.order_number} ({h.ship_policy}) holds allocated units back from fulfillment"
                )
        for s in w.shipments:  # rule 7: carrier and tracking number exactly when dispatched
            assert (s.status == "dispatched") == (s.carrier is not None and s.tracking_number is not None), s

    def _check_purchase_orders(self, w: World) -> None:
        open_lines: dict[str, int] = defaultdict(int)
        status: dict[str, str] = {}
        for r in w.po_lines:
            assert 0 <= r.received_qty <= r.qty, r
            assert r.open == int(r.received_qty < r.qty), r
            open_lines[r.po_number] += r.open
            status[r.po_number] = r.status
        for po_number, n in open_lines.items():
            assert (status[po_number] == "received") == (n == 0), f"PO {po_number}: {status[po_number]}"
            assert status[po_number] in ("open", "received")
        if self.expect_received is not None:
            po_number, received = self.expect_received
            assert self._received(w, po_number) == received, f"PO {po_number}: received quantities"
            self.expect_received = None
        stored = tuple(as_json(w.rule_setting)["keys"]) if w.rule_setting is not None else DEFAULT_RULE
        assert stored == self.rule, f"rule in force {stored}, last set {self.rule}"

    @staticmethod
    def _received(w: World, po_number: str) -> dict[str, int]:
        return {r.sku: r.received_qty for r in w.po_lines if r.po_number == po_number}

    def _check_queue_order(self, before: World, w: World) -> None:
        """6. Queue order = rule order, for whatever allocated in this step.

        A step's allocations (other than a new order taking free stock) went to the queue as it
        stood before the step, head first: a line got units only if it was waiting, not more than it
        waited for, and no line ahead of it in the rule's order (read before the step) still waits.
        """
        backordered_now = {r.id: r.backordered_qty for r in w.lines}
        waited = {r.id: r.backordered_qty for r in before.lines}
        queues = {sku: [q.line_id for q in before.queue(sku, self.rule)] for sku in SKUS}
        got: dict[int, int] = defaultdict(int)
        for a in w.allocations:
            if a.id <= self.max_alloc_id or a.source == "placement":
                continue
            queue = queues[a.sku]
            assert a.line_id in queue, f"{a.source} gave {a.qty} of {a.sku} to line {a.line_id}, which was not waiting"
            got[a.line_id] += a.qty
            assert got[a.line_id] <= waited[a.line_id], f"line {a.line_id} got more than it waited for"
            still = [lid for lid in queue[: queue.index(a.line_id)] if backordered_now[lid] > 0]
            assert not still, f"{a.sku}: line {a.line_id} got units while lines {still} ahead of it still wait"
            if len(queue) > 1:
                note(f"{a.source} allocated into a queue of several lines")
        if w.allocations:
            self.max_alloc_id = w.allocations[-1].id


def test_engine_keeps_its_rules_under_random_operations(store: Store) -> None:
    # An idle connection held open keeps SQLite from checkpointing its WAL each time one of the
    # store's unpooled connections closes; it holds no transaction and changes no result.
    with store.engine.connect():
        run_state_machine_as_test(
            lambda: EngineMachine(store),
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            ),
        )


def test_the_machine_starts_each_example_from_an_empty_store(store: Store) -> None:
    first = EngineMachine(store)
    first.create_customers([Tier.GOLD] * len(CUSTOMERS))
    first._write(lambda c: adjust_stock(c, "SKU-A", 5, "count"))
    EngineMachine(store)

    def counts(conn: Connection) -> dict[str, int]:
        return {
            t.name: conn.execute(text(f"SELECT COUNT(*) FROM {t.name}")).scalar_one() for t in metadata.sorted_tables
        }

    found = store.read(counts)
    assert found["customers"] == found["stock_movements"] == 0
    assert found["products"] == len(SKUS)
    assert store.read(lambda c: c.execute(text("SELECT SUM(on_hand) FROM products")).scalar_one()) == 0
