from decimal import Decimal

import pytest

from aktina.core import roles
from aktina.jobs.models import JobRun
from tests.analytics.helpers import job_run, order_with_lines
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/dashboard/", "/dashboard/queues/"])
def test_pages_send_anonymous_to_the_login_and_refuse_users_without_the_permission(
    client, make_user, url
):
    assert client.get(url).url.startswith(f"/admin/login/?next={url}")
    client.force_login(make_user(roles.CUSTOMER))
    assert client.get(url).status_code == 403
    client.force_login(make_user(is_staff=True))  # is_staff alone grants nothing
    assert client.get(url).status_code == 403


def test_business_dashboard_shows_figures_and_charts(client, make_user):
    product = ProductFactory(sku="SKU-PAGE", unit_price=Decimal("12.50"))
    order_with_lines(customer=UserFactory(username="page-customer"), lines=[(product, 2)])
    client.force_login(make_user(roles.MANAGER))
    html = client.get("/dashboard/").content.decode()
    assert '<svg id="chart-revenue"' in html
    assert '<svg id="chart-funnel"' in html
    assert '<div class="value" id="kpi-revenue-30">25.00</div>' in html
    assert "SKU-PAGE" in html
    assert "page-customer" in html


def test_queue_page_lists_queues_with_failed_links_and_retry(client, make_user):
    job_run(queue="default", status=JobRun.Status.FAILED)
    job_run(queue="default", status=JobRun.Status.FAILED)
    job_run(queue="analytics", status=JobRun.Status.QUEUED, ago=5)
    client.force_login(make_user(roles.OPERATIONS))
    html = client.get("/dashboard/queues/").content.decode()
    assert '<svg id="chart-queue-throughput"' in html
    assert "/admin/jobs/jobrun/?status__exact=failed&amp;queue__exact=default" in html
    assert 'id="retry-default"' in html

    response = client.post("/dashboard/queues/default/retry/", follow=True)
    assert "2 failed run(s) of &#x27;default&#x27; are queued again." in response.content.decode()
    assert JobRun.objects.filter(queue="default", status=JobRun.Status.QUEUED).count() == 2


def test_retry_needs_the_operate_permission_and_post(client, make_user):
    job_run(queue="default", status=JobRun.Status.FAILED)
    client.force_login(make_user(roles.MANAGER))
    assert client.get("/dashboard/queues/default/retry/").status_code == 405
    assert client.post("/dashboard/queues/default/retry/").status_code == 403
    assert client.post("/dashboard/queues/nope/retry/").status_code == 404
    assert JobRun.objects.get().status == JobRun.Status.FAILED


def test_retry_is_csrf_protected(make_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(roles.OPERATIONS))
    assert client.post("/dashboard/queues/default/retry/").status_code == 403


def test_admin_index_links_the_dashboards(client, superuser):
    client.force_login(superuser)
    html = client.get("/admin/").content.decode()
    assert 'href="/dashboard/"' in html
    assert 'href="/dashboard/queues/"' in html
