"""Webhook URLs (which often carry the receiver's token) are shown to admin keys only, on both stores:
every other key sees a webhook notification's subscription id in their place."""

from __future__ import annotations

from pathlib import Path

import pytest

from oms.domain.access import Role

from ..notify.conftest import outbox_rows
from .hooks import isolate, one_order, subscribe


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def test_only_admin_keys_see_webhook_urls_in_the_notifications(api):
    url = "https://hooks.example.net/oms?token=s3cret-receiver-token"
    sub = subscribe(api, url)
    one_order(api)
    outbox_rows(api.store)  # the worker builds the messages (nothing is delivered here)
    as_admin = api.get("/notifications", params={"kind": "webhook"}).json()["items"]
    assert [(n["to"], n["subscription_id"]) for n in as_admin] == [(url, sub["id"])]
    callers = {
        "channel": api.as_role(Role.CHANNEL, channel="web"),
        "purchasing": api.as_role(Role.PURCHASING),
        "ops": api.as_role(Role.OPS),
    }
    for role, caller in callers.items():
        for params in ({"kind": "webhook"}, {}, {"status": "pending"}):
            r = caller.get("/notifications", params=params)
            assert r.status_code == 200, (role, r.text)
            assert "s3cret" not in r.text and "hooks.example.net" not in r.text, (role, params)
        items = caller.get("/notifications", params={"kind": "webhook"}).json()["items"]
        assert [(n["to"], n["subscription_id"]) for n in items] == [(f"subscription:{sub['id']}", sub["id"])], role
