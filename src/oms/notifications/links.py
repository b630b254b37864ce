"""Signed links to the customer's order page (/c/{token}): they expire, and a tampered one reads as nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

from oms.settings import settings
from oms.store.db import Store
from oms.store.reads import stored_secret

SECRET_SETTING = "secret_key"
SALT = "oms.customer-link"
DEFAULT_MAX_AGE_DAYS = 30


def _now() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = _now  # what links are dated and checked by (tests move it)


class _Signer(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(clock().timestamp())


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SALT, signer=_Signer)


def max_age_seconds() -> int:
    return int(settings().link_max_age_days * 86400)


def make_token(secret: str, order_number: str) -> str:
    return _serializer(secret).dumps({"o": order_number})


def read_token(secret: str, token: str, max_age: int | None = None) -> str | None:
    """The order number a valid, unexpired token names; None for anything else."""
    try:
        data = _serializer(secret).loads(token, max_age=max_age if max_age is not None else max_age_seconds())
    except BadData:
        return None
    value = data.get("o") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def public_url() -> str:
    return settings().public_url.rstrip("/")


def order_link(secret: str, order_number: str) -> str:
    return f"{public_url()}/c/{make_token(secret, order_number)}"


def store_secret(store: Store) -> str:
    """The key customer links are signed with."""
    return stored_secret(store, SECRET_SETTING)
