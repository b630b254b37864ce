"""The in-process queues writers wait in before they reach the database (oms.store.db)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from oms.store.db import FairLock, KeyedLocks

SPINS = 2_000_000  # a bound on every wait below; each spin only yields the interpreter


def _until(condition: Callable[[], bool]) -> None:
    for _ in range(SPINS):
        if condition():
            return
        time.sleep(0)  # yield to the other threads; no time passes on purpose
    raise AssertionError("the threads never got there")


def test_a_fair_lock_is_handed_on_in_the_order_it_was_asked_for() -> None:
    lock = FairLock()
    served: list[int] = []
    lock.__enter__()  # held: everyone below queues

    def worker(n: int) -> None:
        with lock:
            served.append(n)

    threads = []
    for n in range(6):
        t = threading.Thread(target=worker, args=(n,))
        t.start()
        threads.append(t)
        _until(lambda n=n: len(lock._waiting) == n + 1)  # this one is queued before the next asks
    lock.__exit__()
    for t in threads:
        t.join(timeout=10)
    assert served == [0, 1, 2, 3, 4, 5]
    assert not lock._held and not lock._waiting


def test_keyed_locks_hold_one_key_without_blocking_another_and_forget_idle_keys() -> None:
    locks = KeyedLocks()
    entered_b = threading.Event()
    with locks.holding(["A"]):

        def other() -> None:
            with locks.holding(["B"]):
                entered_b.set()

        t = threading.Thread(target=other)
        t.start()
        t.join(timeout=10)
        assert entered_b.is_set()  # B was free while A was held
    assert locks._locks == {}


def test_keyed_locks_taken_in_any_order_cannot_deadlock() -> None:
    locks = KeyedLocks()
    done: list[str] = []
    start = threading.Barrier(2)

    def worker(name: str, keys: list[str]) -> None:
        start.wait(timeout=10)
        for _ in range(200):
            with locks.holding(keys):
                pass
        done.append(name)

    a = threading.Thread(target=worker, args=("ab", ["A", "B"]))
    b = threading.Thread(target=worker, args=("ba", ["B", "A", "B"]))
    a.start()
    b.start()
    a.join(timeout=30)
    b.join(timeout=30)
    assert sorted(done) == ["ab", "ba"]
    assert locks._locks == {}
