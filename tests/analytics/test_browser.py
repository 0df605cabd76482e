"""The dashboard pages in a real browser: headless Chromium from Debian, driven by Selenium."""

import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest

from aktina.jobs.models import JobRun
from analytics.models import DailyMetric
from tests.analytics.helpers import job_run, order_with_lines
from tests.factories import ProductFactory, UserFactory

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="needs Debian's chromium and chromium-driver (apt-get install both)",
    ),
]


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="aktina-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The network is closed: without these flags Chromium waits on connections it cannot make.
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1400,1800", f"--user-data-dir={profile}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


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
