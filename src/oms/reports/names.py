"""The reports' names, groupings and breakdown limit: standard library only, so the CLI can offer them
as choices without importing the reports themselves (SQLAlchemy)."""

from __future__ import annotations

REPORTS = ("summary", "backorders", "lead-times", "cancellations", "fill-rate", "promise-accuracy", "supplier-on-time")
GROUPS_BACKORDERS = ("sku", "customer", "channel", "tier")
GROUPS_FILL_RATE = ("sku", "channel", "day", "week")
GROUPS_PROMISE = ("sku", "channel")
GROUP_CHOICES: dict[str, tuple[str, ...]] = {
    "backorders": GROUPS_BACKORDERS,
    "fill-rate": GROUPS_FILL_RATE,
    "promise-accuracy": GROUPS_PROMISE,
}
BREAKDOWN_LIMIT = 100  # groups a breakdown shows unless asked for more
