"""End-to-end: a real `oms serve` on loopback over a seeded SQLite file, driven by headless Chromium.

One server and one browser for the session (starting them is most of the cost); each test has its
own browser context (its own cookies) and its own SKUs in the seeded store (see tests/web/seed.py),
so tests do not depend on each other's order. Screenshots go to test-artifacts/ for a reviewer.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from oms.store.db import Store, make_engine
from oms.store.migrate import upgrade
from tests.processes import stop_process
from tests.web.seed import PASSWORD, seed

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
START_TIMEOUT_S = 30.0


@dataclass
class Server:
    base: str
    store: Store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`oms serve` on a free loopback port over a migrated, seeded SQLite file; killed at teardown."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing: `make browser` installs it")
    tmp_path = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{tmp_path / 'oms.db'}"
    upgrade(url)
    seeding = Store(make_engine(url))
    seed(seeding)
    seeding.engine.dispose()
    port = _free_port()
    env = {**os.environ, "OMS_DATABASE_URL": url, "OMS_MAIL_DIR": str(tmp_path / "mail")}
    env.pop("OMS_SECRET_KEY", None)
    oms = Path(sys.executable).parent / "oms"
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [str(oms), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError("oms serve exited: " + (tmp_path / "server.log").read_text())
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("oms serve did not answer /healthz in time")
            time.sleep(0.1)
        store = Store(make_engine(url))
        yield Server(base, store)
        store.engine.dispose()
    finally:
        stop_process(proc)
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing: `make browser` installs it")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, server: Server, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (own cookies) at 1280 px; its last screen is saved whatever happens."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=server.base)
    context.set_default_timeout(10_000)
    pg = context.new_page()
    pg.on("dialog", lambda d: d.accept())
    yield pg
    shot(pg, f"last-{request.node.name}")
    context.close()


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"e2e-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
