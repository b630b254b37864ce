"""The service tier: the use cases driven directly (no HTTP), on SQLite and PostgreSQL, at a clock the test moves."""

from __future__ import annotations

import pytest

from oms.store.db import Store

from ..builders import Shop


@pytest.fixture
def shop(store: Store) -> Shop:
    """A shop with customer C1 (standard tier) and nothing else."""
    s = Shop(store)
    s.customer("C1")
    return s
