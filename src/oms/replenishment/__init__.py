"""Replenishment: purchase orders, receipts that allocate at once, the receipt preview, promises and the shortfall."""
