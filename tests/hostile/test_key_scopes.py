"""`oms keys create` never drops an argument: only channel keys are scoped to a channel, so --channel
with any other role is refused (non-zero exit, the reason, no key stored), on both stores."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from oms.access.keys import authenticate, list_keys
from oms.cli import app as cli
from oms.domain.access import Role

from ..backup.test_backup_restore import url_of

runner = CliRunner()


@pytest.mark.parametrize("role", [r.value for r in Role if r is not Role.CHANNEL])
def test_a_channel_for_a_role_that_cannot_be_scoped_is_refused_and_no_key_is_made(store, monkeypatch, role):
    monkeypatch.setenv("OMS_DATABASE_URL", url_of(store))
    result = runner.invoke(cli, ["keys", "create", "--role", role, "--name", "scoped", "--channel", "web"])
    assert result.exit_code != 0, result.output
    assert "--channel" in result.output and "channel" in result.output
    assert "oms_" not in result.output
    assert store.read(list_keys) == []
    result = runner.invoke(cli, ["keys", "create", "--role", role, "--name", "unscoped"])
    assert result.exit_code == 0, result.output


def _made(store: Any, output: str) -> Any:
    token = output.strip().splitlines()[-1]
    return store.read(lambda c: authenticate(c, token))


def test_a_channel_key_needs_a_channel_that_orders_can_name(store, monkeypatch):
    monkeypatch.setenv("OMS_DATABASE_URL", url_of(store))
    for bad in (["--channel", "web/eu"], ["--channel", "web shop"], []):
        result = runner.invoke(cli, ["keys", "create", "--role", "channel", "--name", "shop", *bad])
        assert result.exit_code != 0, (bad, result.output)
    assert store.read(list_keys) == []
    result = runner.invoke(cli, ["keys", "create", "--role", "channel", "--name", "shop", "--channel", "web.eu"])
    assert result.exit_code == 0, result.output
    who = _made(store, result.output)
    assert (who.role, who.channel, who.channel_scope) == (Role.CHANNEL, "web.eu", "web.eu")
