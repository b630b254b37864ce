"""Schemathesis over the whole OpenAPI, in-process: no server errors, no schema violations.

`make test` runs a bounded campaign on a fixed seed (examples, fuzzing and the stateful phase);
`make fuzz` runs a longer one with every phase, including coverage, on SQLite and PostgreSQL:
  OMS_FUZZ_MAX_EXAMPLES (default 10), OMS_FUZZ_PHASES (default examples,fuzzing,stateful),
  OMS_FUZZ_SEED (default 20261126), OMS_FUZZ_STORES (default sqlite).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from oms.access.keys import create_key
from oms.app import create_app
from oms.domain.access import Role
from oms.store.db import Store, make_engine

from ..conftest import PG_URL, _truncate_pg

log = logging.getLogger(__name__)
MAX_EXAMPLES = int(os.environ.get("OMS_FUZZ_MAX_EXAMPLES", "10"))
PHASES = set(os.environ.get("OMS_FUZZ_PHASES", "examples,fuzzing,stateful").split(","))
SEED = int(os.environ.get("OMS_FUZZ_SEED", "20261126"))
STORES = os.environ.get("OMS_FUZZ_STORES", "sqlite").split(",")
# Valid data the contract still refuses: 412 (stale If-Match) and 422 (a well-formed body naming
# an unknown SKU or customer, API.md) are right answers to schema-valid requests.
POSITIVE_STATUSES = ["2xx", "401", "403", "404", "409", "412", "422", "429"]


def day(n: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=n)).isoformat()


def seed(client: TestClient, headers: dict[str, str]) -> None:
    """A small live store: stock, a back order, a PO, a receipt, shipments at several steps."""

    def ok(r: Any) -> None:
        assert r.status_code < 300, r.text

    v1 = "/api/v1"
    for sku, mode in (("TENT-2P", "always"), ("LAMP", "never"), ("BOOT-42", "when_incoming")):
        body = {"name": sku, "unit_price": "19.99", "lead_time_days": 7, "backorder_policy": {"mode": mode}}
        ok(client.put(f"{v1}/products/{sku}", json=body, headers=headers))
        ok(
            client.post(
                f"{v1}/inventory/adjustments", json={"sku": sku, "qty_delta": 4, "reason": "count"}, headers=headers
            )
        )
    for cid, tier in (("ALICE", "gold"), ("BOB", "standard")):
        ok(
            client.put(
                f"{v1}/customers/{cid}",
                json={"name": cid, "email": f"{cid}@example.com", "tier": tier},
                headers=headers,
            )
        )
    po = {"po_number": "PO-1", "supplier": "Acme", "lines": [{"sku": "TENT-2P", "qty": 10, "expected_date": day(9)}]}
    ok(client.post(f"{v1}/purchase-orders", json=po, headers=headers))
    for n, (cid, qty) in enumerate((("ALICE", 3), ("BOB", 5), ("ALICE", 2)), start=1):
        order = {
            "order_number": f"SO-{n}",
            "channel": "web",
            "customer_id": cid,
            "lines": [{"sku": "TENT-2P", "qty": qty}],
        }
        ok(client.post(f"{v1}/orders", json=order, headers=headers))
    ok(
        client.post(
            f"{v1}/receipts",
            json={"grn_number": "GRN-1", "po_number": "PO-1", "lines": [{"sku": "TENT-2P", "qty": 4}]},
            headers=headers,
        )
    )
    shipments = client.get(f"{v1}/shipments", headers=headers).json()["items"]
    ok(client.post(f"{v1}/shipments/{shipments[0]['id']}/advance", json={}, headers=headers))


@pytest.fixture(params=STORES)
def fuzz_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copy(template, tmp_path / "fuzz.db")
        s = Store(make_engine(f"sqlite:///{tmp_path / 'fuzz.db'}"))
    else:
        if not PG_URL:
            pytest.skip("OMS_TEST_PG_URL is not set")
        request.getfixturevalue("pg_engine_url")
        s = Store(make_engine(PG_URL))
        _truncate_pg(s)
    yield s
    s.engine.dispose()


def test_the_whole_api_survives_schemathesis_with_no_errors_or_schema_violations(fuzz_store: Store):
    app = create_app(fuzz_store, rate_limit_per_minute=0)
    token = fuzz_store.write(lambda uow: create_key(uow.conn, Role.ADMIN, "fuzzer"))
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        seed(client, headers)
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "headers": headers,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
            "checks": {"enabled": True, "positive_data_acceptance": {"expected-statuses": POSITIVE_STATUSES}},
            "phases": {name: {"enabled": name in PHASES} for name in ("examples", "coverage", "fuzzing", "stateful")},
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    failures: list[str] = []
    scenarios = 0
    phases: dict[str, str] = {}
    transitions = 0
    started = time.monotonic()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            scenarios += 1
            for nodes in event.recorder.checks.values():
                for node in nodes:
                    if node.failure_info is not None:
                        failures.append(f"{event.recorder.label} [{node.name}]: {node.failure_info.failure}")
        elif isinstance(event, events.PhaseStarted) and event.payload is not None:
            transitions = event.payload.transitions_selected
        elif isinstance(event, events.PhaseFinished):
            phases[event.phase.name.value] = event.status.value
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"engine error: {event}")
        elif isinstance(event, events.EngineFinished):
            failures += [str(f) for f in event.failures]
    log.info("schemathesis: %d scenarios in %.0f s, phases %s", scenarios, time.monotonic() - started, phases)

    unique = sorted(set(failures))
    assert unique == [], "\n\n".join(unique[:20])
    operations = len([1 for ops in app.openapi()["paths"].values() for _ in ops])
    assert scenarios >= operations  # every operation was exercised at least once
    for phase in PHASES:
        assert phases.get(phase) == Status.SUCCESS.value, phases
    if "stateful" in PHASES:
        assert transitions > 0  # links between operations were found and walked


def test_the_openapi_documents_auth_problems_limits_and_idempotency_for_every_endpoint(api):
    doc = api.client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from `oms keys create --role ROLE --name NAME [--channel CH]`.",
    }
    assert set(doc["components"]["schemas"]["Problem"]["required"]) == {"type", "title", "status", "detail"}
    checked = 0
    for path, operations in doc["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            assert op["security"] == [{"bearer": []}], where
            codes = set(op["responses"])
            assert {"401", "403", "422", "429", "500"} <= codes, where
            assert any(c.startswith("2") for c in codes), where
            for code in codes - {c for c in codes if c.startswith("2")}:
                assert "application/problem+json" in op["responses"][code]["content"], (where, code)
            assert op["responses"]["429"]["headers"]["Retry-After"]["required"] is True
            if method in ("post", "put", "patch"):
                assert {"400", "413", "415"} <= codes, where
            if "{" in path:
                assert "404" in codes, where
            keyed = any(p["name"] == "Idempotency-Key" for p in op.get("parameters", []))
            read_only = path == "/api/v1/promise" or path.endswith("/preview")
            assert keyed == (method == "post" and not read_only), where
            checked += 1
    assert checked >= 29
    assert "1048576 bytes" in doc["info"]["description"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    docs = api.client.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
