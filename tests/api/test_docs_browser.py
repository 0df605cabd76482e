"""/api/docs/ and /api/redoc/ render in a real browser that can reach nothing but the app:
Swagger UI and ReDoc are served from drf-spectacular-sidecar, not from a CDN."""

import pytest

from tests.browser import BROWSER_MARKS, SCREENSHOTS, chromium

pytestmark = BROWSER_MARKS


@pytest.fixture
def offline_browser():
    # The network is blocked: names do not resolve and every non-loopback request goes to a
    # proxy that is not there. Only the live server (localhost) answers.
    with chromium(
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
        "--proxy-server=http://127.0.0.1:9",
    ) as driver:
        yield driver


def _resources(browser) -> list[str]:
    """What the page loaded, images aside: ReDoc's sidebar badge is a CSS image from its own
    site; offline it is simply not shown."""
    return browser.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter(e => !e.name.endsWith('.svg')).map(e => e.name)"
    )


def _wait_for_all(browser, selector: str, timeout: int = 30):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(
        ec.presence_of_all_elements_located((By.CSS_SELECTOR, selector))
    )


def test_swagger_ui_lists_the_operations_offline(transactional_db, live_server, offline_browser):
    offline_browser.get(f"{live_server.url}/api/docs/")
    paths = {
        e.text.replace("\u200b", "")
        for e in _wait_for_all(offline_browser, ".opblock-summary-path")
    }
    assert {"/api/orders/", "/api/orders/{id}/cancel/", "/api/auth/token/"} <= paths
    resources = _resources(offline_browser)
    assert resources
    assert all(r.startswith(live_server.url) for r in resources), resources
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    offline_browser.save_screenshot(str(SCREENSHOTS / "api-docs.png"))


def test_redoc_lists_the_operations_offline(transactional_db, live_server, offline_browser):
    offline_browser.get(f"{live_server.url}/api/redoc/")
    operations = _wait_for_all(offline_browser, "[data-section-id^='operation/']")
    assert len(operations) >= 20
    resources = _resources(offline_browser)
    assert all(r.startswith(live_server.url) for r in resources), resources
