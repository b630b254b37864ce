"""The typed contract: every success answer in /openapi.json is a named model, every operation has a
short id, and a client generated from the served document with openapi-python-client (with no
warning) places and reads an order as typed objects."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from oms.app import create_app
from oms.store.db import Store, make_engine

API = "/api/v1/"
PACKAGE = "oms_typed_client"  # the generated package's name: the directory it is written to
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


def test_every_success_answer_is_a_named_model_and_every_operation_id_is_short(api):
    doc = api.client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    ids: list[str] = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            ids.append(op["operationId"])
            assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", op["operationId"]), where
            assert "_api_v1_" not in op["operationId"] and len(op["operationId"]) <= 32, where
            if not path.startswith(API):
                continue
            success = {code: answer for code, answer in op["responses"].items() if code.startswith("2")}
            assert success, where
            for code, answer in success.items():
                content = answer["content"]
                ref = content["application/json"]["schema"]["$ref"]  # a named schema, and only that
                assert content["application/json"]["schema"] == {"$ref": ref}, (where, code)
                name = ref.removeprefix("#/components/schemas/")
                assert schemas[name]["type"] == "object" and schemas[name]["properties"], (where, code, name)
                others = set(content) - {"application/json"}
                assert others <= {"text/csv"}, (where, code)
                if others:  # the reports, with ?format=csv
                    assert path.startswith(API + "reports/") and content["text/csv"]["schema"] == {"type": "string"}
            for status in set(op["responses"]) - set(success):  # errors are problem details
                problem = op["responses"][status]["content"]["application/problem+json"]["schema"]
                assert problem == {"$ref": "#/components/schemas/Problem"}, (where, status)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    named = {op["operationId"] for ops in doc["paths"].values() for op in ops.values()}
    assert {"place_order", "get_order", "list_backorders", "receive_goods", "get_allocation_rule"} <= named
    for both in (
        ("/orders", "post"),
        ("/receipts", "post"),
        ("/products/{sku}", "put"),
        ("/customers/{customer_id}", "put"),
    ):
        responses = doc["paths"][API.rstrip("/") + both[0]][both[1]]["responses"]
        assert {"200", "201"} <= set(responses), both


@pytest.fixture(scope="module")
def typed_client(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """A client package generated from the served document (once per module: it takes a few seconds)."""
    where = tmp_path_factory.mktemp("typed_client")
    shutil.copy(sqlite_template, where / "oms.db")
    store = Store(make_engine(f"sqlite:///{where / 'oms.db'}"))
    with TestClient(create_app(store)) as http:
        spec = http.get("/openapi.json")
    store.engine.dispose()
    assert spec.status_code == 200
    (where / "openapi.json").write_bytes(spec.content)
    (where / "config.yaml").write_text("post_hooks: []\n")  # no formatter run over the generated code
    run = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(where / "openapi.json"),
            "--output-path",
            str(where / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(where / "config.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    said = run.stdout + run.stderr
    assert run.returncode == 0, said
    assert "warning" not in said.lower(), said  # no response, model or parameter left out
    assert (where / PACKAGE / "api" / "orders" / "place_order.py").is_file()
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _use(package: ModuleType, *names: str) -> list[Any]:
    """The generated modules named (`api.orders.place_order` ...)."""
    return [importlib.import_module(f"{package.__name__}.{name}") for name in names]


def test_a_generated_client_places_and_reads_an_order_as_typed_objects(api, typed_client):
    models = importlib.import_module(f"{PACKAGE}.models")
    put_product, adjust_stock, put_customer, place_order, get_order, list_backorders = _use(
        typed_client,
        "api.catalogue.put_product",
        "api.catalogue.adjust_stock",
        "api.catalogue.put_customer",
        "api.orders.place_order",
        "api.orders.get_order",
        "api.back_orders.list_backorders",
    )
    http = TestClient(api.client.app, headers=api.headers)  # an httpx.Client that calls the app in-process
    client = typed_client.AuthenticatedClient(base_url="http://testserver", token="unused").set_httpx_client(http)

    product = put_product.sync(sku="TENT", client=client, body=models.ProductIn(name="Tent", unit_price="10.00"))
    assert isinstance(product, models.Product) and product.stock.on_hand == 0 and product.backorder_policy is None
    assert product.effective_backorder_policy.mode == models.BackorderMode.ALWAYS
    adjusted = adjust_stock.sync(client=client, body=models.AdjustmentIn(sku="TENT", qty_delta=3, reason="count"))
    assert isinstance(adjusted, models.StockAdjustment) and adjusted.on_hand == 3
    customer = models.CustomerIn(name="Alice", email="alice@example.com", tier=models.Tier.GOLD)
    assert isinstance(put_customer.sync(customer_id="ALICE", client=client, body=customer), models.Customer)

    body = models.OrderIn(
        order_number="SO-1",
        channel="web",
        customer_id="ALICE",
        lines=[models.OrderLineIn(sku="TENT", qty=5)],
    )
    placed = place_order.sync_detailed(client=client, body=body)
    assert placed.status_code == HTTPStatus.CREATED
    order = placed.parsed
    assert isinstance(order, models.Order)
    assert order.status == models.OrderStatus.BACKORDERED and order.status.value == "backordered"
    assert order.ship_policy == models.ShipPolicy.PARTIAL
    assert order.order_value == "50.00" and order.placed_at.tzinfo is not None
    [line] = order.lines
    assert isinstance(line, models.OrderLine)
    assert (line.qty, line.allocated_qty, line.backordered_qty, line.eta) == (5, 3, 2, None)

    again = place_order.sync_detailed(client=client, body=body)  # the same order again: 200, the stored one
    assert again.status_code == HTTPStatus.OK and isinstance(again.parsed, models.Order)
    read = get_order.sync(order_number="SO-1", client=client)
    assert isinstance(read, models.Order)
    assert read.to_dict() == order.to_dict() == again.parsed.to_dict()

    queue = list_backorders.sync(client=client, sku="TENT")
    assert isinstance(queue, models.BackorderLinePage) and queue.next_cursor is None
    [waiting] = queue.items
    assert (waiting.order_number, waiting.queue_position, waiting.backordered_qty) == ("SO-1", 1, 2)
    assert waiting.customer_tier == models.Tier.GOLD

    missing = get_order.sync(order_number="SO-404", client=client)
    assert isinstance(missing, models.Problem) and missing.status == 404
