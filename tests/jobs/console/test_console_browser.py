"""The console in headless Chromium: the queue page refreshes itself, the run page acts, the
changelists fit 1 400 px. Screenshots land in build/screenshots/ (docs/screenshots/ keeps a copy).
"""

import pytest
from django.utils import timezone

from aktina.jobs.models import JobProcess, JobRun
from orders.jobs import GenerateShippingLabelJob
from orders.models import Order
from tests.analytics.helpers import job_run
from tests.browser import BROWSER_MARKS, SCREENSHOTS, chromium
from tests.factories import OrderFactory, UserFactory, WarehouseFactory

pytestmark = BROWSER_MARKS
PASSWORD = "pw-for-tests-1"


@pytest.fixture
def browser():
    with chromium() as driver:
        yield driver


@pytest.fixture
def logged_in(transactional_db, live_server, browser):
    from selenium.webdriver.common.by import By

    UserFactory(username="boss", is_staff=True, is_superuser=True, password=PASSWORD)
    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    wait_for(browser, "#id_username").send_keys("boss")
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_for(browser, "#site-name")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return browser


def wait_for(driver, selector: str, *, text: str | None = None, timeout: float = 20):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout)
    if text is not None:
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, selector), text))
    return wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, selector)))


def test_the_queue_page_refreshes_a_number_without_a_reload(logged_in, live_server):
    browser = logged_in
    for _ in range(4):
        job_run(queue="default", ago=120)
    job_run(queue="order-processing", status=JobRun.Status.FAILED, ago=300)
    cluster = _cluster_with_workers(name="default", queues=["default", "order-processing"])
    running = job_run(queue="default", status=JobRun.Status.RUNNING, ago=40)
    JobRun.objects.filter(pk=running.pk).update(holder=cluster, started_at=running.available_at)
    JobProcess.objects.filter(pk=cluster.pk).update(running=[running.pk])
    browser.get(f"{live_server.url}/dashboard/queues/")
    assert wait_for(browser, "#last-hour-succeeded").text == "4"
    wait_for(browser, f"#held-{running.pk}")
    browser.execute_script("window.__notReloaded = true;")
    browser.save_screenshot(str(SCREENSHOTS / "console-queues.png"))

    for _ in range(3):
        job_run(queue="default", ago=30)
    wait_for(browser, "#last-hour-succeeded", text="7")
    assert browser.execute_script("return window.__notReloaded === true;")


def _cluster_with_workers(*, name: str, queues: list[str], workers: int = 2):
    from aktina.jobs.processes import process_register

    cluster = process_register(kind="cluster", cluster=name, queues=queues, boot=f"boot-{name}")
    for i in range(workers):
        process_register(
            kind="worker", cluster=name, queues=queues, boot=f"boot-{name}", pid=cluster.pid + 1 + i
        )
    return cluster


def test_an_unserved_queue_warns_until_a_cluster_serves_it(logged_in, live_server, settings):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser = logged_in
    settings.JOBS_DEDICATED_QUEUES = ["urgent"]
    _cluster_with_workers(name="default", queues=[q for q in settings.JOBS_QUEUES if q != "urgent"])
    job_run(queue="urgent", status=JobRun.Status.QUEUED, ago=90)
    browser.get(f"{live_server.url}/dashboard/queues/")
    warning = wait_for(browser, "#unserved-urgent").text
    assert "1 due run(s)" in warning
    assert "qcluster --name urgent" in warning
    browser.execute_script("window.__notReloaded = true;")

    _cluster_with_workers(name="urgent", queues=["urgent"], workers=1)
    WebDriverWait(browser, 20).until(
        ec.invisibility_of_element_located((By.CSS_SELECTOR, "#unserved-urgent"))
    )
    wait_for(browser, "#clusters", text="urgent")
    assert browser.execute_script("return window.__notReloaded === true;")


def test_the_run_page_retries_and_cancels_with_a_confirmation(logged_in, live_server):
    from selenium.webdriver.common.by import By

    browser = logged_in
    order = OrderFactory(status=Order.Status.FULFILLING)
    queued = GenerateShippingLabelJob(order).delay(300).dispatch()
    failed = job_run(queue="default", status=JobRun.Status.FAILED)
    JobRun.objects.filter(pk=failed.pk).update(
        last_error="CarrierUnavailable: the carrier answered 503 three times"
    )

    browser.get(f"{live_server.url}/admin/jobs/jobrun/{queued.pk}/change/")
    wait_for(browser, "#run-cancel").click()
    consequences = wait_for(browser, "#cancel-consequences").text
    assert f"stays {order.get_status_display()}" in consequences
    browser.save_screenshot(str(SCREENSHOTS / "console-cancel-confirmation.png"))
    browser.find_element(By.ID, "confirm-cancel").click()
    wait_for(browser, ".messagelist", text="cancelled")
    assert JobRun.objects.get(pk=queued.pk).status == JobRun.Status.CANCELLED
    assert Order.objects.get(pk=order.pk).status == Order.Status.FULFILLING

    browser.get(f"{live_server.url}/admin/jobs/jobrun/{failed.pk}/change/")
    wait_for(browser, "#run-retry").click()
    wait_for(browser, ".messagelist", text="queued again")
    assert JobRun.objects.get(pk=failed.pk).status == JobRun.Status.RETRIED
    assert JobRun.objects.filter(retry_of=failed.pk, status=JobRun.Status.QUEUED).exists()


def test_a_django_q_task_page_shows_its_function_and_arguments(logged_in, live_server):
    from django_q.tasks import async_task

    browser = logged_in
    async_task("math.sqrt", -1)
    run = JobRun.objects.get(task_function="math.sqrt")
    JobRun.objects.filter(pk=run.pk).update(
        status=JobRun.Status.FAILED, attempts=1, started_at=timezone.now(),
        finished_at=timezone.now(), last_error="ValueError: math domain error",
    )  # fmt: skip
    browser.get(f"{live_server.url}/admin/jobs/jobrun/{run.pk}/change/")
    content = wait_for(browser, "#content").text
    assert "math.sqrt" in content
    assert "(-1,)" in content
    assert run.payload["args"][0] not in browser.page_source
    browser.save_screenshot(str(SCREENSHOTS / "console-run.png"))


@pytest.mark.parametrize(
    ("url", "columns"),
    [
        (
            "/admin/jobs/jobrun/",
            ["created_display", "available_display", "finished_display", "error_display"],
        ),
        ("/admin/orders/order/", ["created_display", "total_amount", "warehouse_display"]),
    ],
)
def test_changelists_fit_1400_pixels(logged_in, live_server, url, columns):
    browser = logged_in
    browser.set_window_size(1400, 900)
    customer = UserFactory(username="alexandra.vandenberg-logistics")
    warehouse = WarehouseFactory(code="NL-RTM-N", name="Rotterdam Distribution Centre North")
    order = OrderFactory(
        status=Order.Status.FULFILLING, customer=customer, warehouse=warehouse,
        total_amount="123456.78",
    )  # fmt: skip
    GenerateShippingLabelJob.dispatch(order)
    failed = job_run(queue="order-processing", status=JobRun.Status.FAILED)
    JobRun.objects.filter(pk=failed.pk).update(
        last_error="CarrierUnavailable: " + "the carrier's gateway timed out again " * 8,
        finished_at=timezone.now(),
    )
    browser.get(f"{live_server.url}{url}")
    wait_for(browser, "#result_list")
    name = url.strip("/").replace("/", "-")
    browser.save_screenshot(str(SCREENSHOTS / f"console-{name}-1400.png"))
    # The admin scrolls a wide table inside its results box: what is past its edge is hidden.
    width = browser.execute_script(
        "return Math.min(document.documentElement.clientWidth,"
        " document.querySelector('#changelist .results').getBoundingClientRect().right);"
    )
    for column in columns:
        right = browser.execute_script(
            "return document.querySelector('th.column-' + arguments[0])"
            ".getBoundingClientRect().right;",
            column,
        )
        assert right <= width, f"{column} ends at {right}px, past the visible {width}px"
