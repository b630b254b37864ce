"""What-if previews: run the real use case inside a transaction that is rolled back.

Because a preview executes the very code that the real request would, a preview followed by the
real request (with nothing else happening between) makes exactly the previewed allocations.
"""

from __future__ import annotations

from typing import Any

from oms.replenishment import use_cases as replenishment
from oms.store.uow import UnitOfWork


def preview_receipt(
    uow: UnitOfWork,
    grn_number: str,
    lines: list[replenishment.ReceiptLine],
    po_number: str | None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The allocations a receipt would make and every waiting line whose ETA would move."""
    receipt = replenishment.receive_goods(uow, grn_number, lines, po_number, None, body)
    changes = [
        {
            "order_number": c.line.order_number,
            "line_no": c.line.line_no,
            "sku": c.line.sku,
            "from": c.before.isoformat() if c.before else None,
            "to": c.line.eta.isoformat() if c.line.eta else None,
        }
        for c in receipt.eta_changes
        if c.line.backordered_qty > 0
    ]
    return {**receipt.result, "eta_changes": changes}
