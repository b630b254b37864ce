"""The whole application: the API's frame (oms.api) with every area's routes, and the dashboard.

Each area (orders, replenishment, fulfillment, catalog, notifications, reports) owns its routes; this
module is the one place that knows them all.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from oms.api.app import create_api
from oms.api.guard import MAX_BODY_BYTES
from oms.api.openapi import install_openapi
from oms.catalog import api as catalog_api
from oms.catalog import pages as catalog_pages
from oms.catalog import settings_pages
from oms.fulfillment import api as fulfillment_api
from oms.fulfillment import pages as fulfillment_pages
from oms.notifications import api as notifications_api
from oms.orders import api as orders_api
from oms.orders import backorder_pages
from oms.orders import pages as orders_pages
from oms.replenishment import api as replenishment_api
from oms.replenishment import pages as replenishment_pages
from oms.reports import api as reports_api
from oms.reports import pages as reports_pages
from oms.store.db import Store
from oms.web import overview, session
from oms.web.mount import mount_web

log = logging.getLogger("oms.api")

API_ROUTERS = [catalog_api.router, orders_api.router, replenishment_api.router, fulfillment_api.router]
PAGES = [
    session.router,
    overview.router,
    backorder_pages.router,
    orders_pages.router,
    fulfillment_pages.router,
    replenishment_pages.router,
    catalog_pages.router,
    settings_pages.router,
    reports_pages.router,
]


def create_app(
    store: Store | None = None, *, rate_limit_per_minute: int | None = None, max_body_bytes: int = MAX_BODY_BYTES
) -> FastAPI:
    """The API under /api/v1 and the dashboard at /, over a store (by default the configured one)."""
    app = create_api(store, rate_limit_per_minute=rate_limit_per_minute, max_body_bytes=max_body_bytes)
    for router in API_ROUTERS:
        app.include_router(router, prefix="/api/v1")
    notifications_api.include(app)  # outbox, webhooks, explain, the customer's order page
    reports_api.install(app)  # /api/v1/reports/*, GET /metrics, request latency
    install_openapi(app, app.state.guard_settings)
    mount_web(app, PAGES)  # the dashboard at /: sign-in, pages, /static
    return app


def serve_app() -> FastAPI:
    """The app as `oms serve` runs it. On SQLite the worker runs in this process, on the app's own
    store: its transactions then take their turn in the same writers' queue as the requests' (with a
    store of its own, both would poll SQLite's lock and sleep between polls)."""
    app = create_app()
    store: Store = app.state.store
    if store.dialect == "sqlite":  # on PostgreSQL, run `oms worker` processes instead
        from oms.worker import start_in_process

        stop = start_in_process(store, log.info)
        app.router.on_shutdown.append(stop.set)
    return app
