"""The service answers health checks without a key and refuses API calls without one."""


def test_healthz_answers_without_a_key(api):
    assert api.client.get("/healthz").status_code == 200


def test_api_calls_without_a_key_are_refused_as_problem_details(api):
    r = api.client.get("/api/v1/backorders")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 401


def test_a_product_is_created_then_read_back_with_its_stock(api):
    r = api.put("/products/SKU-1", {"name": "Tent", "unit_price": "199.00", "lead_time_days": 14})
    assert r.status_code == 201, r.text
    r = api.get("/products/SKU-1")
    assert r.json()["stock"] == {"on_hand": 0, "allocated": 0, "available": 0, "backordered": 0, "incoming": 0}
    assert r.json()["unit_price"] == "199.00"
