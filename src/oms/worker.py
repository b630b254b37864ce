"""The worker: turns committed events into notifications, delivers them, and runs the scheduled jobs.

Each round first builds the outbox from the event batches committed since the last round
(oms.notifications.builder: in event order, each batch exactly once), then delivers.

Delivery is at least once. A worker claims a batch of due messages by leasing them (on PostgreSQL
with SELECT ... FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint batches; on SQLite the
write lock serializes claims), delivers each, then records the outcome. A worker that dies
mid-delivery leaves its lease to expire, and another (or its restart) delivers the message again
under the same id: receivers dedupe on webhook-id / Message-ID. A failed attempt is retried after
base x 2^(attempts-1) seconds (capped); after `max_attempts` the message is dead, and listed so.

A batch is delivered in lanes, one per receiver (a webhook subscription, an email address), a few
lanes at a time: each receiver gets its messages in order, and a slow one holds up only its own
lane. A webhook delivery has one total deadline (oms.notifications.webhooks); a receiver that does not
answer ends its lane for the round, its other messages deferred, so it costs a round one deadline.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select, update

from oms.notifications import builder as notifications
from oms.notifications import email, links, targets, webhooks
from oms.orders import jobs
from oms.reports import rollups
from oms.settings import settings
from oms.store.db import Store
from oms.store.tables import outbox, webhook_deliveries, webhook_subscriptions
from oms.store.uow import UnitOfWork, utcnow

log = logging.getLogger("oms.worker")


@dataclass
class WorkerConfig:
    batch_size: int = 10  # x the longest deadline (15 s) stays well inside the lease
    lease_seconds: float = field(default_factory=lambda: settings().worker_lease_seconds)
    backoff_seconds: float = field(default_factory=lambda: settings().outbox_backoff_seconds)
    backoff_cap_seconds: float = 6 * 3600
    max_attempts: int = field(default_factory=lambda: settings().outbox_max_attempts)
    poll_seconds: float = field(default_factory=lambda: settings().worker_poll_seconds)
    job_interval_seconds: float = field(default_factory=lambda: settings().job_interval_seconds)
    # Report rollups' delta rows (PostgreSQL) folded this often; reports are exact either way, only faster.
    fold_interval_seconds: float = field(default_factory=lambda: settings().fold_interval_seconds)
    # One webhook delivery, from name resolution to the answer's headers, never takes longer than this.
    webhook_deadline_seconds: float = field(default_factory=lambda: settings().webhook_deadline_seconds)
    # Receivers delivered to side by side (one lane each: a webhook subscription, an email address).
    delivery_threads: int = field(default_factory=lambda: max(1, settings().delivery_threads))


def backoff(attempts: int, base: float, cap: float) -> float:
    """Seconds to wait after the `attempts`-th failure: base, 2 x base, 4 x base, ... up to cap."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str | None = None
    status_code: int | None = None
    duration_ms: int = 0
    deferred: bool = False  # not attempted: its receiver just failed to answer; due again after the base backoff


SUBSCRIPTION_REMOVED = "subscription removed"
DEFERRED = Outcome(False, "not attempted: the receiver did not answer an earlier message", deferred=True)


class Worker:
    """One delivery loop; run several (threads or processes) against one PostgreSQL store."""

    def __init__(
        self,
        store: Store,
        config: WorkerConfig | None = None,
        name: str | None = None,
        resolver: targets.Resolver = targets.system_resolver,
    ) -> None:
        self.store = store
        self.config = config or WorkerConfig()
        self.resolver = resolver  # host name -> addresses, checked before every webhook delivery
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._last_redate: date | None = None
        self._last_jobs = 0.0
        self._last_fold = 0.0
        self._secret: str | None = None

    # ---- claiming -------------------------------------------------------------------------------

    def claim(self, now: datetime | None = None) -> list[Any]:
        """Lease up to batch_size due messages to this worker, in one short transaction."""
        now = now or utcnow()

        def tx(uow: UnitOfWork) -> list[Any]:
            conn = uow.conn
            q = (
                select(outbox.c.id)
                .where(
                    outbox.c.status == "pending",
                    outbox.c.next_attempt_at <= now,
                    or_(outbox.c.leased_until.is_(None), outbox.c.leased_until < now),
                )
                .order_by(outbox.c.next_attempt_at, outbox.c.id)
                .limit(self.config.batch_size)
            )
            if conn.dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True)
            ids = list(conn.scalars(q))
            if not ids:
                return []
            until = now + timedelta(seconds=self.config.lease_seconds)
            conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(leased_until=until, locked_by=self.name))
            return list(conn.execute(select(outbox).where(outbox.c.id.in_(ids)).order_by(outbox.c.next_attempt_at)))

        return self.store.write(tx)

    # ---- delivering -----------------------------------------------------------------------------

    def deliver(self, msg: Any, subscriptions: Mapping[int, Any] | None = None) -> Outcome:
        """Attempt one message (a failure of any kind is an outcome, never an exception)."""
        try:
            if msg.kind == "email":
                return self._email(msg)
            if msg.kind == "webhook":
                subs = self._subscriptions([msg]) if subscriptions is None else subscriptions
                return self._webhook(msg, subs.get(msg.subscription_id))
            return Outcome(False, f"unknown kind {msg.kind!r}")
        except Exception as exc:  # a bad server or template is a failed attempt, not a dead worker
            log.warning("delivery of %s failed: %s", msg.id, exc)
            return Outcome(False, f"{type(exc).__name__}: {exc}"[:1000])

    def deliver_batch(self, batch: list[Any]) -> list[tuple[Any, Outcome]]:
        """Deliver a claimed batch: one lane per receiver, up to `delivery_threads` lanes at a time.

        A lane (a webhook subscription, an email address) takes its messages in order, so each
        receiver still gets them in event order. A webhook that gets no answer (unreachable, refused,
        or past its deadline) ends its lane for this round: the lane's other messages are deferred,
        not attempted, so a slow receiver costs the round one deadline and holds up no other lane.
        """
        subs = self._subscriptions(batch)
        lanes: dict[tuple[str, Any], list[Any]] = {}
        for msg in batch:
            lanes.setdefault((msg.kind, msg.subscription_id if msg.kind == "webhook" else msg.recipient), []).append(
                msg
            )
        outcomes: dict[str, Outcome] = {}

        def run(lane: list[Any]) -> None:
            silent = False
            for msg in lane:
                outcomes[msg.id] = DEFERRED if silent else self.deliver(msg, subs)
                o = outcomes[msg.id]
                no_answer = not o.ok and o.status_code is None and o.error != SUBSCRIPTION_REMOVED
                silent = silent or (msg.kind == "webhook" and no_answer)

        threads = min(self.config.delivery_threads, len(lanes))
        if threads <= 1:
            for lane in lanes.values():
                run(lane)
        else:
            with ThreadPoolExecutor(threads, thread_name_prefix="oms-deliver") as pool:
                list(pool.map(run, lanes.values()))
        return [(msg, outcomes[msg.id]) for msg in batch]

    def _subscriptions(self, batch: Iterable[Any]) -> dict[int, Any]:
        ids = {m.subscription_id for m in batch if m.kind == "webhook"}
        if not ids:
            return {}
        q = select(webhook_subscriptions).where(webhook_subscriptions.c.id.in_(ids))
        return {r.id: r for r in self.store.read(lambda c: c.execute(q).all())}

    def _email(self, msg: Any) -> Outcome:
        link = None
        if msg.event_type in ("order_confirmation", "eta_later") and _waiting(msg.payload):
            self._secret = self._secret or links.store_secret(self.store)
            link = links.order_link(self._secret, msg.payload["order_number"])
        started = time.monotonic()
        email.send(email.render(msg.id, msg.event_type, msg.recipient, msg.payload, link, utcnow()), msg.id)
        return Outcome(True, duration_ms=int((time.monotonic() - started) * 1000))

    def _webhook(self, msg: Any, sub: Any) -> Outcome:
        if sub is None or not sub.active:
            return Outcome(False, SUBSCRIPTION_REMOVED)
        body = json.dumps(msg.payload, separators=(",", ":"), sort_keys=True).encode()
        a = webhooks.post(
            msg.recipient,
            sub.secret,
            msg.id,
            body,
            deadline_seconds=self.config.webhook_deadline_seconds,
            resolver=self.resolver,
        )
        return Outcome(a.ok, a.error, a.status_code, a.duration_ms)

    def finish(self, msg: Any, outcome: Outcome, now: datetime | None = None) -> str:
        """Record an attempt: delivered, or retried later, or dead. Returns the new status."""
        return self.finish_all([(msg, outcome)], now)[0]

    def finish_all(self, attempts: list[tuple[Any, Outcome]], now: datetime | None = None) -> list[str]:
        """Record a batch's attempts in one transaction (on SQLite, every transaction waits for the
        writers' turn: one per message would hold up the orders); returns each message's new status."""
        at = now or utcnow()
        statuses = self.store.write(lambda uow: [self._record(uow.conn, m, o, at) for m, o in attempts])
        for (msg, outcome), _ in zip(attempts, statuses, strict=True):
            if not outcome.ok and not outcome.deferred:
                log.warning(
                    "%s %s to %s: attempt %d failed: %s",
                    msg.kind,
                    msg.id,
                    # A webhook URL often carries the receiver's token: the log names the subscription.
                    f"subscription {msg.subscription_id}" if msg.kind == "webhook" else msg.recipient,
                    msg.attempts + 1,
                    outcome.error,
                )
        return statuses

    def _record(self, conn: Any, msg: Any, outcome: Outcome, now: datetime) -> str:
        if outcome.deferred:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == msg.id, outbox.c.status == "pending")
                .values(
                    leased_until=None,
                    locked_by=None,
                    next_attempt_at=now + timedelta(seconds=self.config.backoff_seconds),
                )
            )
            return "pending"
        attempts = msg.attempts + 1
        gone = outcome.error == SUBSCRIPTION_REMOVED
        if outcome.ok:
            values: dict[str, Any] = {"status": "delivered", "delivered_at": now, "last_error": None}
        elif gone or attempts >= self.config.max_attempts:
            values = {"status": "dead", "last_error": outcome.error}
        else:
            wait = backoff(attempts, self.config.backoff_seconds, self.config.backoff_cap_seconds)
            values = {"next_attempt_at": now + timedelta(seconds=wait), "last_error": outcome.error}
        conn.execute(
            update(outbox)
            .where(outbox.c.id == msg.id, outbox.c.status == "pending")
            .values(attempts=outbox.c.attempts + 1, leased_until=None, locked_by=None, **values)
        )
        if msg.kind == "webhook" and not gone:
            conn.execute(
                insert(webhook_deliveries).values(
                    subscription_id=msg.subscription_id,
                    message_id=msg.id,
                    event_type=msg.event_type,
                    attempt=attempts,
                    at=now,
                    status_code=outcome.status_code,
                    ok=1 if outcome.ok else 0,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                )
            )
        return str(values.get("status", "pending"))

    def build(self) -> int:
        """Turn every pending event batch into outbox rows (bounded rounds); returns batches built."""
        total = 0
        for _ in range(100):
            n = notifications.build_notifications(self.store)
            total += n
            if n < notifications.BATCHES_PER_ROUND:
                break
        return total

    def run_once(self) -> int:
        """Build the pending events' messages, then claim one batch and deliver it; returns messages attempted."""
        self.build()
        batch = self.claim()
        if batch:
            self.finish_all(self.deliver_batch(batch))
        return len(batch)

    def drain(self, max_batches: int = 1000) -> int:
        """Deliver until nothing is due (bounded); returns messages attempted."""
        total = 0
        for _ in range(max_batches):
            n = self.run_once()
            total += n
            if n == 0:
                break
        return total

    # ---- scheduled jobs -------------------------------------------------------------------------

    def run_jobs(self, now: datetime | None = None) -> dict[str, int]:
        """Re-date SKUs with late POs (once a day per worker) and cancel aged-out back orders."""
        now = now or utcnow()
        out = {"aged_out_orders": jobs.cancel_aged_backorders(self.store, now)}
        if self._last_redate != now.date():
            out["redated_skus"] = jobs.redate_late_po_skus(self.store, now)
            self._last_redate = now.date()
        return out

    def fold(self) -> int:
        """Fold the report rollups' delta rows (PostgreSQL); reports are exact without it, only slower."""
        return rollups.fold_rollups(self.store)

    def run(self, stop: threading.Event, max_seconds: float | None = None, jobs_enabled: bool = True) -> None:
        """Build and deliver notifications, fold the report rollups and run the jobs until `stop` is set."""
        deadline = time.monotonic() + max_seconds if max_seconds is not None else None
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            try:
                if jobs_enabled and time.monotonic() - self._last_jobs >= self.config.job_interval_seconds:
                    self._last_jobs = time.monotonic()
                    done = self.run_jobs()
                    if any(done.values()):
                        log.info("jobs: %s", done)
                if time.monotonic() - self._last_fold >= self.config.fold_interval_seconds:
                    self._last_fold = time.monotonic()
                    self.fold()
                if self.run_once() == 0:
                    stop.wait(self.config.poll_seconds)
            except Exception:  # the database went away for a moment: keep the loop alive
                log.exception("worker loop error")
                stop.wait(min(30.0, self.config.poll_seconds * 5))


def _waiting(payload: dict[str, Any]) -> bool:
    lines = payload.get("backordered") if "backordered" in payload else payload.get("lines")
    return bool(lines)


def start_in_process(store: Store, log_fn: Callable[[str], None] | None = None) -> threading.Event:
    """A daemon thread delivering the outbox inside this process (oms serve on SQLite). Set the event to stop.

    OMS_INPROCESS_WORKER=0 turns it off (then run `oms worker` yourself).
    """
    stop = threading.Event()
    if not settings().inprocess_worker:
        return stop
    worker = Worker(store, name=f"serve:{os.getpid()}")
    threading.Thread(target=worker.run, args=(stop,), name="oms-outbox", daemon=True).start()
    if log_fn:
        log_fn(f"in-process worker delivering notifications ({_mail_target()})")
    return stop


def _mail_target() -> str:
    url = settings().smtp_url
    return f"email via {url.split('@')[-1]}" if url else f"email to {settings().mail_dir}/*.eml"
