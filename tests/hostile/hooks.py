"""Shared by the hostile webhook tests: subscribing, one order, the deliveries log, mail kept in tmp.

The receivers of these tests listen on 127.0.0.1: a test that delivers to them sets
OMS_WEBHOOK_ALLOW_PRIVATE=1 itself; every other test runs with it unset (`isolate`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..notify.conftest import customer, place, product

ALLOW = "OMS_WEBHOOK_ALLOW_PRIVATE"


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Mail to a folder in tmp, no SMTP server, private targets refused (each test module's autouse fixture)."""
    monkeypatch.delenv("OMS_SMTP_URL", raising=False)
    monkeypatch.setenv("OMS_MAIL_DIR", str(tmp_path / "mail"))
    monkeypatch.delenv(ALLOW, raising=False)


def deliveries(api: Any, sub_id: int) -> list[dict[str, Any]]:
    r = api.get(f"/webhooks/{sub_id}/deliveries")
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def subscribe(api: Any, url: str, types: list[str] | None = None) -> dict[str, Any]:
    r = api.post("/webhooks", {"url": url, "event_types": types or ["order_placed"]})
    assert r.status_code == 201, r.text
    return dict(r.json())


def one_order(api: Any, number: str = "SO-1") -> None:
    if api.get("/products/TENT").status_code == 404:
        product(api, "TENT")
        customer(api)
    place(api, number, [("TENT", 1)])
