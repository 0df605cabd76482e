"""The dashboard pages in a real browser: headless Chromium from Debian, driven by Selenium."""

from decimal import Decimal

import pytest

from aktina.jobs.models import JobRun
from analytics.models import DailyMetric
from tests.analytics.helpers import job_run, order_with_lines
from tests.browser import BROWSER_MARKS, SCREENSHOTS, chromium
from tests.factories import ProductFactory, UserFactory

pytestmark = BROWSER_MARKS


@pytest.fixture
def browser():
    with chromium() as driver:
        yield driver


def wait_for(driver, selector: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 15).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, selector))
    )


def text(driver, selector: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector).text.strip()


def test_staff_logs_in_and_sees_both_dashboards(transactional_db, live_server, browser):
    from selenium.webdriver.common.by import By

    UserFactory(username="boss", is_staff=True, is_superuser=True, password="pw-for-tests-1")
    product = ProductFactory(sku="SKU-BROWSER", unit_price=Decimal("15.00"))
    for quantity in (1, 2, 3):
        order_with_lines(customer=UserFactory(), lines=[(product, quantity)])
    for _ in range(3):
        job_run(queue="default", status=JobRun.Status.FAILED)
    job_run(queue="analytics")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    browser.get(f"{live_server.url}/admin/login/?next=/dashboard/")
    wait_for(browser, "#id_username").send_keys("boss")
    browser.find_element(By.ID, "id_password").send_keys("pw-for-tests-1")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    wait_for(browser, "svg#chart-revenue g.bar")
    wait_for(browser, "svg#chart-funnel")
    today = DailyMetric.objects.get()
    assert text(browser, "#kpi-orders-30") == str(today.orders)
    assert text(browser, "#kpi-revenue-30") == f"{today.revenue:.2f}" == "90.00"
    assert "SKU-BROWSER" in text(browser, "#top-products")
    browser.save_screenshot(str(SCREENSHOTS / "dashboard.png"))

    browser.find_element(By.LINK_TEXT, "Queues").click()
    wait_for(browser, "svg#chart-queue-throughput g.bar")
    failed = JobRun.objects.filter(queue="default", status=JobRun.Status.FAILED).count()
    assert text(browser, "#queue-default [data-field=failed]") == str(failed) == "3"
    assert text(browser, "#queue-analytics [data-field=throughput_1h]") == "1"
    browser.save_screenshot(str(SCREENSHOTS / "queues.png"))

    browser.find_element(By.ID, "retry-default").click()
    assert "3 failed run(s)" in wait_for(browser, "#messages").text
    assert text(browser, "#queue-default [data-field=failed]") == "0"
    assert JobRun.objects.filter(queue="default", status=JobRun.Status.QUEUED).count() == 3
    browser.save_screenshot(str(SCREENSHOTS / "queues-after-retry.png"))
