"""An Idempotency-Key keeps only a request's own final answer, on both stores.

A redirect (POST to a path with a trailing slash), a path no route serves, and a failure on our side
are not answers to keep: the key stays free, so the request sent again with the same key where it
belongs runs once, and its answer is the one replayed afterwards.
"""

from __future__ import annotations

from typing import Any

from .test_injection import ok, prepare


def _post(api: Any, path: str, body: Any, key: str, **kw: Any) -> Any:
    headers = {**api.headers, "Idempotency-Key": key}
    return api.client.post("/api/v1" + path, json=body, headers=headers, **kw)


def _on_hand(api: Any) -> int:
    return int(ok(api.get("/products/P-1"))["stock"]["on_hand"])


def test_a_redirect_is_not_kept_under_the_key_and_the_followed_request_runs_once(api):
    prepare(api)
    stock = _on_hand(api)
    body = {"sku": "P-1", "qty_delta": 2, "reason": "count"}
    key = "adjust-1"
    r = _post(api, "/inventory/adjustments/", body, key, follow_redirects=False)
    assert r.status_code in (307, 308), r.text
    assert r.headers["location"].endswith("/api/v1/inventory/adjustments")
    first = _post(api, "/inventory/adjustments", body, key)
    assert first.status_code == 201, first.text
    again = _post(api, "/inventory/adjustments", body, key)
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true", again.text
    assert again.json() == first.json()
    assert _on_hand(api) == stock + 2  # once, not twice


def test_following_the_redirect_as_a_client_would_books_once(api):
    prepare(api)
    stock = _on_hand(api)
    body = {"sku": "P-1", "qty_delta": 1, "reason": "count"}
    key = "adjust-2"
    for _ in range(2):
        r = _post(api, "/inventory/adjustments/", body, key, follow_redirects=True)
        assert r.status_code == 201, r.text
    assert _on_hand(api) == stock + 1


def test_a_path_no_route_serves_does_not_take_the_key(api):
    prepare(api)
    body = {"sku": "P-1", "qty_delta": 1, "reason": "count"}
    key = "adjust-3"
    assert _post(api, "/inventory/adjustment", body, key).status_code == 404
    r = _post(api, "/inventory/adjustments", body, key)
    assert r.status_code == 201, r.text
