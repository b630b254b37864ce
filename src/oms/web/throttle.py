"""Sign-in throttling: a run of wrong passwords for one user name, or from one address, waits a while.

Each process keeps its own counts (a restart forgets them), so with N server processes an attacker
gets at most N times the allowance; argon2 already makes every guess cost a noticeable CPU time.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

WINDOW_S = 15 * 60
PER_USER = 5  # failures per user name in the window
PER_ADDRESS = 20  # failures per client address in the window
MAX_KEYS = 10_000  # memory bound: the least recently failed keys are forgotten first


class SignInThrottle:
    def __init__(
        self,
        per_user: int = PER_USER,
        per_address: int = PER_ADDRESS,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = {"user": per_user, "address": per_address}
        self.window_s = window_s
        self.clock = clock
        self.failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self.failures.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def wait_seconds(self, username: str, address: str) -> int:
        """0 if a sign-in may be tried now, else the seconds until the oldest counted failure expires."""
        now = self.clock()
        wait = 0.0
        for kind, value in (("user", username.casefold()), ("address", address)):
            times = self._recent((kind, value), now)
            if len(times) >= self.limits[kind]:
                wait = max(wait, times[0] + self.window_s - now)
        return math.ceil(wait)

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        for key in (("user", username.casefold()), ("address", address)):
            times = self._recent(key, now)
            times.append(now)
            self.failures[key] = times
            self.failures.move_to_end(key)
        while len(self.failures) > MAX_KEYS:
            self.failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        self.failures.pop(("user", username.casefold()), None)
