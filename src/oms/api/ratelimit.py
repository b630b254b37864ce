"""A per-key rate limit: an in-process token bucket for each API key.

Each process keeps its own buckets, so with N server workers a key may make up to N times the
limit; that is the price of needing no shared store, and the limit is a guard, not a quota.
"""

from __future__ import annotations

import math
import threading
import time

from oms.settings import settings

DEFAULT_PER_MINUTE = 6000
ENV = "OMS_RATE_LIMIT_PER_MINUTE"


def limit_from_env() -> int:
    """Requests per minute per key from OMS_RATE_LIMIT_PER_MINUTE (0 switches the limit off)."""
    value = settings().rate_limit_per_minute
    if value < 0:
        raise ValueError(f"{ENV} must be 0 (off) or more, not {value}")
    return value


class RateLimiter:
    """Token buckets: `per_minute` requests in a burst, refilled at per_minute/60 a second."""

    def __init__(self, per_minute: int, max_keys: int = 100_000) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def take(self, key: str, now: float | None = None) -> float:
        """Spend a token: 0.0 when allowed, else the seconds until one is free."""
        if not self.enabled:
            return 0.0
        at = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.per_minute), at))
            tokens = min(float(self.per_minute), tokens + (at - last) * self.rate)
            if tokens >= 1.0:
                if key not in self._buckets and len(self._buckets) >= self.max_keys:
                    self._buckets.clear()
                self._buckets[key] = (tokens - 1.0, at)
                return 0.0
            self._buckets[key] = (tokens, at)
            return (1.0 - tokens) / self.rate

    @staticmethod
    def retry_after(wait_s: float) -> str:
        """Retry-After in whole seconds, never 0."""
        return str(max(1, math.ceil(wait_s)))
