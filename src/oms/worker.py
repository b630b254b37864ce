"""The worker: turns committed events into notifications, delivers them, and runs the scheduled jobs.

Each round first builds the outbox from the event batches committed since the last round
(oms.services.notifications: in event order, each batch exactly once), then delivers.

Delivery is at least once. A worker claims a batch of due messages by leasing them (on PostgreSQL
with SELECT ... FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint batches; on SQLite the
write lock serializes claims), delivers each, then records the outcome. A worker that dies
mid-delivery leaves its lease to expire, and another (or its restart) delivers the message again
under the same id: receivers dedupe on webhook-id / Message-ID. A failed attempt is retried after
base x 2^(attempts-1) seconds (capped); after `max_attempts` the message is dead, and listed so.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select, update

from oms.notify import email, links, targets, webhooks
from oms.services import jobs, notifications, rollups
from oms.store.db import Store
from oms.store.tables import outbox, webhook_deliveries, webhook_subscriptions
from oms.store.uow import UnitOfWork, utcnow

log = logging.getLogger("oms.worker")


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass
class WorkerConfig:
    batch_size: int = 10  # x the longest timeout (15 s) stays well inside the lease
    lease_seconds: float = field(default_factory=lambda: _env_float("OMS_WORKER_LEASE_SECONDS", 300))
    backoff_seconds: float = field(default_factory=lambda: _env_float("OMS_OUTBOX_BACKOFF_SECONDS", 10))
    backoff_cap_seconds: float = 6 * 3600
    max_attempts: int = field(default_factory=lambda: int(_env_float("OMS_OUTBOX_MAX_ATTEMPTS", 10)))
    poll_seconds: float = field(default_factory=lambda: _env_float("OMS_WORKER_POLL_SECONDS", 1.0))
    job_interval_seconds: float = field(default_factory=lambda: _env_float("OMS_JOB_INTERVAL_SECONDS", 3600))
    # Report rollups' delta rows (PostgreSQL) folded this often; reports are exact either way, only faster.
    fold_interval_seconds: float = field(default_factory=lambda: _env_float("OMS_FOLD_INTERVAL_SECONDS", 5))


def backoff(attempts: int, base: float, cap: float) -> float:
    """Seconds to wait after the `attempts`-th failure: base, 2 x base, 4 x base, ... up to cap."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str | None = None
    status_code: int | None = None
    duration_ms: int = 0


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

    def deliver(self, msg: Any) -> Outcome:
        try:
            if msg.kind == "email":
                return self._email(msg)
            if msg.kind == "webhook":
                return self._webhook(msg)
            return Outcome(False, f"unknown kind {msg.kind!r}")
        except Exception as exc:  # a bad server or template is a failed attempt, not a dead worker
            log.warning("delivery of %s failed: %s", msg.id, exc)
            return Outcome(False, f"{type(exc).__name__}: {exc}"[:1000])

    def _email(self, msg: Any) -> Outcome:
        link = None
        if msg.event_type in ("order_confirmation", "eta_later") and _waiting(msg.payload):
            self._secret = self._secret or links.store_secret(self.store)
            link = links.order_link(self._secret, msg.payload["order_number"])
        started = time.monotonic()
        email.send(email.render(msg.id, msg.event_type, msg.recipient, msg.payload, link, utcnow()), msg.id)
        return Outcome(True, duration_ms=int((time.monotonic() - started) * 1000))

    def _webhook(self, msg: Any) -> Outcome:
        q = select(webhook_subscriptions).where(webhook_subscriptions.c.id == msg.subscription_id)
        sub = self.store.read(lambda c: c.execute(q).first())
        if sub is None or not sub.active:
            return Outcome(False, "subscription removed")
        body = json.dumps(msg.payload, separators=(",", ":"), sort_keys=True).encode()
        a = webhooks.post(msg.recipient, sub.secret, msg.id, body, resolver=self.resolver)
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
            if not outcome.ok:
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
        attempts = msg.attempts + 1
        gone = outcome.error == "subscription removed"
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
            self.finish_all([(msg, self.deliver(msg)) for msg in batch])
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
    if os.environ.get("OMS_INPROCESS_WORKER", "1") == "0":
        return stop
    worker = Worker(store, name=f"serve:{os.getpid()}")
    threading.Thread(target=worker.run, args=(stop,), name="oms-outbox", daemon=True).start()
    if log_fn:
        log_fn(f"in-process worker delivering notifications ({_mail_target()})")
    return stop


def _mail_target() -> str:
    url = os.environ.get("OMS_SMTP_URL")
    return f"email via {url.split('@')[-1]}" if url else f"email to {os.environ.get('OMS_MAIL_DIR', 'mail')}/*.eml"
