"""Every setting oms takes from its environment, in one place: `settings()` reads them once.

Names are the fields' upper-cased with the `OMS_` prefix (`OMS_DATABASE_URL`, `OMS_SMTP_URL`, …);
README.md's configuration table lists them with their meaning. A value that does not parse stops the
process with a message naming the variable. Settings kept in the database (the allocation rule, the
default back-order policy) are not here: they change at run time and every process sees a change
at its next transaction (`oms.store.uow`).
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """The environment's settings, parsed and typed."""

    model_config = SettingsConfigDict(env_prefix="OMS_", extra="ignore", frozen=True)

    database_url: str = "sqlite:///oms.db"
    secret_key: str | None = None  # signs sessions and customer links; else one is kept in the store
    public_url: str = "http://127.0.0.1:8000"  # the base of links in customer emails
    link_max_age_days: float = 30
    smtp_url: str | None = None  # unset: emails are written as .eml files to mail_dir
    mail_dir: Path = Path("mail")
    mail_from: str = "orders@oms.localhost"
    late_po_grace_days: int | None = None  # when set, overrides the store's setting
    inprocess_worker: bool = True  # `oms serve` on SQLite builds and delivers notifications itself
    worker_poll_seconds: float = 1.0
    worker_lease_seconds: float = 300
    outbox_backoff_seconds: float = 10
    outbox_max_attempts: int = 10
    job_interval_seconds: float = 3600
    fold_interval_seconds: float = 5
    request_read_timeout_seconds: float = 30
    rate_limit_per_minute: int = 6000  # per API key and process; 0: no limit
    idempotency_lease_seconds: float = 300
    webhook_allow_private: bool = False  # permit loopback and private webhook targets (tests, closed networks)
    webhook_deadline_seconds: float = 10  # one delivery, from name resolution to the answer's headers
    delivery_threads: int = 4  # receivers delivered to side by side


@functools.cache
def settings() -> Settings:
    """The settings, read from the environment once per process."""
    return Settings()


def forget() -> None:
    """Read the environment again at the next `settings()` (tests that change it call this)."""
    settings.cache_clear()
