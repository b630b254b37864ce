"""A purchase order's status under concurrent receipts and cancels, on both stores (bounded: 10 trials each).

Every use case that changes a PO's lines or status locks its row and lines after the SKUs (sorted),
so the last of four receipts that each fill one line of a 4-line PO sees the other three and marks
it received, and a receipt that completes a PO (all of it, or its last open line) and a cancel of it
never both succeed.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from oms.catalog import use_cases as catalog
from oms.domain.errors import DomainError
from oms.domain.policy import BackorderMode, BackorderPolicy
from oms.replenishment import use_cases as replenishment
from oms.store.db import Store
from oms.store.tables import po_lines, purchase_orders, receipts
from oms.store.uow import UnitOfWork

TRIALS = 10
SKUS = ["RACE-A", "RACE-B", "RACE-C", "RACE-D"]
QTY = 5
WAIT_S = 60  # the barrier's bound: a stuck thread fails the test instead of hanging it


def _products(store: Store) -> None:
    def go(uow: UnitOfWork) -> None:
        for sku in SKUS:
            catalog.put_product(
                uow, catalog.ProductSpec(sku, sku, Decimal("1.00"), 5, BackorderPolicy(BackorderMode.ALWAYS))
            )

    store.write(go)


def _po(store: Store, number: str) -> None:
    due = datetime.now(UTC).date() + timedelta(days=7)
    lines = [replenishment.PoLine(sku, QTY, due) for sku in SKUS]
    store.write(lambda uow: replenishment.create_po(uow, number, "Acme", lines))


def _state(store: Store, number: str) -> tuple[str, list[tuple[int, int, int]]]:
    with store.engine.connect() as conn:
        head = conn.execute(select(purchase_orders).where(purchase_orders.c.po_number == number)).one()
        lines = conn.execute(
            select(po_lines.c.qty, po_lines.c.received_qty, po_lines.c.open)
            .where(po_lines.c.po_id == head.id)
            .order_by(po_lines.c.line_no)
        ).all()
    return head.status, [tuple(r) for r in lines]


def _at_once(jobs: list[Any]) -> list[str]:
    """Run the jobs in threads released together; each answers 'ok' or the refusal's class name."""
    gate = threading.Barrier(len(jobs), timeout=WAIT_S)

    def run(job: Any) -> str:
        gate.wait()
        try:
            job()
        except DomainError as exc:
            return type(exc).__name__
        return "ok"

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


def _lines(skus: list[str]) -> list[replenishment.ReceiptLine]:
    return [replenishment.ReceiptLine(sku, QTY) for sku in skus]


def _receive(store: Store, grn: str, number: str, skus: list[str]) -> Any:
    return lambda: store.write(lambda uow: replenishment.receive_goods(uow, grn, _lines(skus), number))


def _cancel(store: Store, number: str) -> Any:
    return lambda: store.write(lambda uow: replenishment.cancel_po(uow, number))


def test_four_concurrent_receipts_that_each_fill_one_line_leave_the_po_received(store):
    _products(store)
    for trial in range(TRIALS):
        number = f"PO-R{trial}"
        _po(store, number)

        def receipt(sku: str, number: str = number, trial: int = trial) -> Any:
            line = [replenishment.ReceiptLine(sku, QTY)]
            return lambda: store.write(lambda uow: replenishment.receive_goods(uow, f"G-{trial}-{sku}", line, number))

        assert _at_once([receipt(sku) for sku in SKUS]) == ["ok"] * len(SKUS)
        status, lines = _state(store, number)
        assert lines == [(QTY, QTY, 0)] * len(SKUS), (trial, lines)
        assert status == "received", (trial, status)


def test_a_receipt_that_fills_a_po_and_a_cancel_of_it_never_both_succeed(store):
    _products(store)
    for trial in range(TRIALS):
        number = f"PO-C{trial}"
        _po(store, number)
        grn = f"G-C{trial}"
        skus = SKUS
        if trial % 2:  # half the trials: three lines came earlier, the race is over the last one
            skus = SKUS[-1:]
            store.write(lambda uow, n=number: replenishment.receive_goods(uow, f"{n}-early", _lines(SKUS[:-1]), n))
        outcomes = _at_once([_receive(store, grn, number, skus), _cancel(store, number)])
        status, lines = _state(store, number)
        with store.engine.connect() as conn:
            booked = conn.execute(select(receipts.c.id).where(receipts.c.grn_number == grn)).first() is not None
        assert outcomes in (["ok", "Conflict"], ["Conflict", "ok"]), (trial, outcomes)
        if outcomes[0] == "ok":
            assert (status, booked, lines) == ("received", True, [(QTY, QTY, 0)] * len(SKUS)), trial
        else:
            assert (status, booked) == ("cancelled", False), trial
            assert all(not open_ for _, _, open_ in lines), (trial, lines)
            assert lines[-1][1] == 0, (trial, lines)
