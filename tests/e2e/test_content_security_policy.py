"""The pages under their Content-Security-Policy in a real browser: nothing refused, and no site may frame them."""

from __future__ import annotations

from playwright.sync_api import ConsoleMessage, Page, expect

from oms.notifications import links

from .conftest import Server, shot, sign_in

PAGES = [
    "/",
    "/backorders",
    "/orders",
    "/orders/SO-B1",
    "/products/TENT-2P",
    "/purchasing",
    "/purchasing/new",
    "/purchasing/receive?po=PO-S1",
    "/fulfillment",
    "/settings",
    "/reports",
]


def refusals(page: Page) -> list[str]:
    """Every message the browser logs when the policy refuses something (script, style, image, frame)."""
    found: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            found.append(message.text)

    page.on("console", note)
    return found


def test_every_page_and_the_api_docs_run_under_the_policy_with_nothing_refused(page: Page, server: Server) -> None:
    refused = refusals(page)
    sign_in(page, "ada")
    for url in PAGES:
        page.goto(url)
        page.wait_for_load_state("load")
    for canvas in ("chart-age", "chart-fill"):  # the charts (a vendored script) are still drawn
        expect(page.locator(f"#{canvas}")).to_have_attribute("data-drawn", "true")
    page.goto("/")
    expect(page.locator(".bar-cell svg rect").first).to_be_visible()  # the overview's bars, without inline styles
    token = links.make_token(links.store_secret(server.store), "SO-T3")  # waits whatever other tests did
    page.goto(f"/c/{token}")
    expect(page.get_by_role("button", name="Keep waiting")).to_be_visible()
    assert page.evaluate("getComputedStyle(document.querySelector('form.inline')).display") == "inline"
    page.goto("/docs")
    expect(page.locator(".opblock").first).to_be_visible()  # Swagger UI lists the operations
    shot(page, "api-docs-under-csp")
    assert refused == []


def test_no_page_not_even_the_sites_own_can_frame_a_dashboard_page(page: Page, server: Server) -> None:
    page.goto("/api/v1/products")  # a document of the site's own origin that carries no policy
    page.set_content(
        f'<iframe name="api" src="{server.base}/api/v1/products"></iframe>'
        f'<iframe name="page" src="{server.base}/login"></iframe>'
    )
    api, login = page.frame(name="api"), page.frame(name="page")
    assert api is not None and login is not None
    expect(api.locator("body")).to_contain_text("API key")  # the control: an answer without the headers is framed
    login.wait_for_url("chrome-error://**")  # the browser refused to show the dashboard in a frame
    expect(page.frame_locator("iframe[name=page]").get_by_label("User name")).to_have_count(0)
