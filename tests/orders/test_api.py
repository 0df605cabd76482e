from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aktina.core import roles
from orders.models import Order, Stock
from orders.services import order_create
from tests.factories import OrderFactory, OrderItemFactory, ProductFactory

pytestmark = pytest.mark.django_db
S = Order.Status
ORDERS = "/api/orders/"


def body(*lines, **extra):
    return {"items": [{"sku": s, "quantity": q} for s, q in lines], **extra}


def test_anonymous_gets_401(api):
    for url in (ORDERS, "/api/warehouses/", "/api/stock/", "/api/notifications/"):
        assert api.get(url).status_code == 401
    assert api.post(ORDERS, body(("SKU-A", 1)), format="json").status_code == 401


def test_create_returns_201_with_the_order(as_user, customer, stock, committed):
    with committed():
        response = as_user(customer).post(ORDERS, body(("SKU-A", 2)), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["status"] == "pending"
    assert data["reference"].startswith("ORD-")
    assert Decimal(data["total_amount"]) == Decimal("20.00")
    assert data["items"] == [
        {
            "id": data["items"][0]["id"],
            "sku": "SKU-A",
            "name": stock.product.name,
            "quantity": 2,
            "unit_price": "10.00",
            "line_total": "20.00",
            "backorder": False,  # 2 of the 50 in stock
        }
    ]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body(("NOPE", 1)), "items"),
        (body(("SKU-A", 0)), "items"),
        (body(("SKU-A", -3)), "items"),
        (body(("SKU-A", "two")), "items"),
        (body(("SKU-A", 2.5)), "items"),
        (body(("SKU-A", 10**30)), "items"),
        ({"items": []}, "items"),
        ({"items": "SKU-A"}, "items"),
        ({"items": ["SKU-A"]}, "items"),
        ({"items": [{"quantity": 1}]}, "items"),
        ({}, "items"),
        (body(("SKU-A", 1), priority="asap"), "priority"),
        (body(("SKU-A", 1), auto_approve="perhaps"), "auto_approve"),
    ],
)
def test_bad_input_is_400_with_field_messages(as_user, customer, stock, payload, field):
    response = as_user(customer).post(ORDERS, payload, format="json")
    assert response.status_code == 400, response.content
    error = response.json()
    assert error["type"] == "validation_error"
    assert field in {e["attr"].split(".")[0] for e in error["errors"]}
    assert not Order.objects.exists()


def test_unknown_sku_error_points_at_the_line(as_user, customer, stock):
    response = as_user(customer).post(ORDERS, body(("SKU-A", 1), ("NOPE", 1)), format="json")
    assert response.json() == {
        "type": "validation_error",
        "errors": [{"code": "invalid", "detail": "Unknown sku 'NOPE'.", "attr": "items.1.sku"}],
    }


def test_malformed_json_and_non_object_bodies_are_400(as_user, customer, stock):
    client = as_user(customer)
    assert client.post(ORDERS, "{not json", content_type="application/json").status_code == 400
    assert client.post(ORDERS, "[1, 2]", content_type="application/json").status_code == 400
    assert client.post(ORDERS, "null", content_type="application/json").status_code == 400


def test_too_many_lines_is_400(as_user, customer, stock, settings):
    settings.ORDER_MAX_LINES = 1
    ProductFactory(sku="SKU-B")
    response = as_user(customer).post(ORDERS, body(("SKU-A", 1), ("SKU-B", 1)), format="json")
    assert response.status_code == 400
    assert "at most 1 lines" in str(response.json())


def test_inactive_product_is_400(as_user, customer, stock):
    ProductFactory(sku="OLD", active=False)
    response = as_user(customer).post(ORDERS, body(("OLD", 1)), format="json")
    assert response.status_code == 400
    assert "no longer sold" in str(response.json())


def test_staff_may_place_urgent_preapproved_orders(as_user, manager, stock):
    response = as_user(manager).post(
        ORDERS, body(("SKU-A", 1), priority="urgent", auto_approve=True), format="json"
    )
    assert response.status_code == 201
    assert response.json()["priority"] == "urgent"


def test_customers_see_their_own_orders_staff_see_all(as_user, api, customer, make_user, manager):
    mine = OrderFactory(customer=customer)
    other = OrderFactory(customer=make_user(roles.CUSTOMER, username="bob"))
    ids = [o["id"] for o in as_user(customer).get(ORDERS).json()["results"]]
    assert ids == [mine.pk]
    assert as_user(customer).get(f"{ORDERS}{other.pk}/").status_code == 404
    ids = {o["id"] for o in as_user(manager).get(ORDERS).json()["results"]}
    assert ids == {mine.pk, other.pk}


def test_list_filters_by_status_and_date(as_user, manager):
    OrderFactory(status=S.SHIPPED)
    pending = OrderFactory(status=S.PENDING)
    client = as_user(manager)
    assert [o["id"] for o in client.get(ORDERS, {"status": "pending"}).json()["results"]] == [
        pending.pk
    ]
    assert client.get(ORDERS, {"created_after": "2999-01-01T00:00:00Z"}).json()["count"] == 0
    assert client.get(ORDERS, {"created_after": "yesterday-ish"}).status_code == 400
    assert client.get(ORDERS, {"status": "nonsense"}).status_code == 400


def test_list_query_count_does_not_grow_with_page_size(as_user, manager, django_assert_num_queries):
    def make(n):
        for _ in range(n):
            OrderItemFactory(order=OrderFactory())

    client = as_user(manager)
    make(2)
    client.get(ORDERS)  # the manager's permissions are loaded once per user, not per page
    with CaptureQueriesContext(connection) as small:
        assert client.get(ORDERS).status_code == 200
    make(20)
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(client.get(ORDERS).json()["results"]) == 22


def test_detail_has_items_allocations_timeline_and_jobs(
    as_user, customer, stock, run_jobs, committed, settings
):
    with committed():
        order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 2}])
    run_jobs()
    data = as_user(customer).get(f"{ORDERS}{order.pk}/").json()
    assert data["status"] == "shipped"
    assert data["warehouse"] == "ATH"
    assert data["label_url"] == f"http://testserver/api/orders/{order.pk}/label/"
    timeline = [t["to_status"] for t in data["timeline"]]
    assert timeline == ["pending", "approved", "fulfilling", "shipped"]
    jobs = {j["job"] for j in data["jobs"]}
    assert "orders.jobs.ProcessOrderFulfillmentJob" in jobs
    assert "orders.jobs.GenerateShippingLabelJob" in jobs
    assert all(j["status"] == "succeeded" for j in data["jobs"])
    assert data["items"][0]["allocations"] == []  # shipped: allocations left with the goods


def test_detail_shows_allocations_while_fulfilling(as_user, customer, stock, manager, committed):
    from orders.services import order_approve, order_fulfil

    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 2}])
    order_approve(order=order)
    order_fulfil(order=order)
    data = as_user(manager).get(f"{ORDERS}{order.pk}/").json()
    assert data["items"][0]["allocations"][0]["warehouse"] == "ATH"
    assert data["items"][0]["allocations"][0]["quantity"] == 2


def test_manager_approves_and_rejects(as_user, customer, stock, manager, committed):
    a = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    b = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    client = as_user(manager)
    response = client.post(f"{ORDERS}{a.pk}/approve/")
    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    assert client.post(f"{ORDERS}{b.pk}/reject/", {}, format="json").status_code == 400
    response = client.post(f"{ORDERS}{b.pk}/reject/", {"reason": "no credit"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    conflict = client.post(f"{ORDERS}{b.pk}/approve/")
    assert conflict.status_code == 409
    assert conflict.json()["errors"][0]["code"] == "invalid_transition"
    assert "is rejected" in conflict.json()["errors"][0]["detail"]


def test_customers_cannot_approve_or_reject(as_user, customer, stock):
    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    client = as_user(customer)
    assert client.post(f"{ORDERS}{order.pk}/approve/").status_code == 403
    reject = client.post(f"{ORDERS}{order.pk}/reject/", {"reason": "x"}, format="json")
    assert reject.status_code == 403


def test_owner_cancels_before_fulfilment_others_get_404(as_user, customer, stock, make_user):
    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    bob = make_user(roles.CUSTOMER, username="bob")
    assert as_user(bob).post(f"{ORDERS}{order.pk}/cancel/").status_code == 404
    response = as_user(customer).post(f"{ORDERS}{order.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


def test_owner_cannot_cancel_while_fulfilling_staff_can(as_user, customer, stock, operations):
    from orders.services import order_approve, order_fulfil

    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 3}])
    order_approve(order=order)
    order_fulfil(order=order)
    response = as_user(customer).post(f"{ORDERS}{order.pk}/cancel/")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "invalid_transition"
    assert "is fulfilling" in response.json()["errors"][0]["detail"]
    assert as_user(operations).post(f"{ORDERS}{order.pk}/cancel/").status_code == 200
    assert Stock.objects.get().quantity_allocated == 0


def test_warehouses_and_stock_for_staff_only(as_user, customer, manager, stock):
    assert as_user(customer).get("/api/warehouses/").status_code == 403
    assert as_user(customer).get("/api/stock/").status_code == 403
    warehouses = as_user(manager).get("/api/warehouses/").json()["results"]
    assert warehouses == [
        {"id": stock.warehouse_id, "code": "ATH", "name": "Athens", "capacity": 1000, "staged": 0}
    ]
    rows = as_user(manager).get("/api/stock/", {"sku": "SKU-A"}).json()["results"]
    assert rows[0]["quantity_available"] == 50


def test_stock_list_query_count_is_fixed(as_user, manager, django_assert_num_queries):
    from tests.factories import StockFactory

    StockFactory.create_batch(3)
    client = as_user(manager)
    client.get("/api/stock/")  # warms the user's permission cache
    with CaptureQueriesContext(connection) as small:
        client.get("/api/stock/")
    StockFactory.create_batch(10)
    with django_assert_num_queries(len(small.captured_queries)):
        assert client.get("/api/stock/").json()["count"] == 13


def test_receive_stock(as_user, customer, manager, inventory_manager, stock):
    payload = {"sku": "SKU-A", "warehouse": "ATH", "quantity": 5}
    assert as_user(customer).post("/api/stock/receive/", payload, format="json").status_code == 403
    assert as_user(manager).post("/api/stock/receive/", payload, format="json").status_code == 403
    response = as_user(inventory_manager).post("/api/stock/receive/", payload, format="json")
    assert response.status_code == 200
    assert response.json()["quantity"] == 55
    for bad in (
        {**payload, "quantity": 0},
        {**payload, "quantity": "lots"},
        {**payload, "quantity": 10**20},
        {**payload, "sku": "NOPE"},
        {**payload, "warehouse": "NOPE"},
        {"sku": ["SKU-A"], "warehouse": "ATH", "quantity": 1},
    ):
        response = as_user(inventory_manager).post("/api/stock/receive/", bad, format="json")
        assert response.status_code == 400, bad


def test_label_page_for_owner_and_staff_only(client, customer, stock, make_user, manager):
    from orders.services import order_approve, order_fulfil, order_shipment_create

    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    order_approve(order=order)
    order_fulfil(order=order)
    order_shipment_create(order=order)
    order.refresh_from_db()
    url = f"/orders/{order.reference}/label/"
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(make_user(roles.CUSTOMER, username="bob"))
    assert client.get(url).status_code == 404
    client.force_login(customer)
    page = client.get(url)
    assert page.status_code == 200
    assert order.tracking_number in page.content.decode()
    client.force_login(manager)
    assert client.get(url).status_code == 200


def test_label_page_for_a_malformed_reference_is_a_404(client, manager):
    # A NUL character reached PostgreSQL as a query parameter and came back as a 500.
    client.force_login(manager)
    assert client.get("/orders/ORD%00-2345/label/").status_code == 404
    assert client.get("/orders/" + "A" * 21 + "/label/").status_code == 404


def test_schema_lists_every_order_endpoint(as_user, manager):
    schema = as_user(manager).get("/api/schema/", {"format": "json"}).json()
    for path in (
        "/api/orders/",
        "/api/orders/{id}/",
        "/api/orders/{id}/approve/",
        "/api/orders/{id}/reject/",
        "/api/orders/{id}/cancel/",
        "/api/warehouses/",
        "/api/stock/",
        "/api/stock/receive/",
        "/api/notifications/",
        "/api/notifications/{id}/read/",
    ):
        assert path in schema["paths"], path


def _shipped_label(customer):
    from orders.services import order_approve, order_fulfil, order_shipment_create

    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    order_approve(order=order)
    order_fulfil(order=order)
    order_shipment_create(order=order)
    order.refresh_from_db()
    return order


def test_label_is_reachable_with_the_owners_token(api, customer, stock, make_user, manager):
    from rest_framework.authtoken.models import Token

    order = _shipped_label(customer)
    url = f"{ORDERS}{order.pk}/label/"
    assert api.get(f"{ORDERS}{order.pk}/").status_code == 401
    token = Token.objects.create(user=customer)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    data = api.get(f"{ORDERS}{order.pk}/").json()
    assert data["label_url"].endswith(url)
    response = api.get(data["label_url"])
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert order.tracking_number in response.content.decode()
    other = Token.objects.create(user=make_user(roles.CUSTOMER, username="bob"))
    api.credentials(HTTP_AUTHORIZATION=f"Token {other.key}")
    assert api.get(url).status_code == 404
    staff = Token.objects.create(user=manager)
    api.credentials(HTTP_AUTHORIZATION=f"Token {staff.key}")
    assert api.get(url).status_code == 200


def test_label_of_an_order_without_a_shipment_is_a_404(as_user, customer, stock):
    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    assert as_user(customer).get(f"{ORDERS}{order.pk}/label/").status_code == 404


def test_products_state_the_most_one_order_can_get(as_user, customer, product, stock):
    from tests.factories import StockFactory, WarehouseFactory

    StockFactory(product=product, warehouse=WarehouseFactory(code="SKG"), quantity=30)
    row = as_user(customer).get("/api/products/", {"sku": "SKU-A"}).json()["results"][0]
    assert (row["quantity_available"], row["max_orderable"]) == (80, 50)


def test_rejecting_a_rejected_order_again_is_a_409(as_user, customer, stock, manager):
    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    client = as_user(manager)
    url = f"{ORDERS}{order.pk}/reject/"
    assert client.post(url, {"reason": "no credit"}, format="json").status_code == 200
    again = client.post(url, {"reason": "a different reason"}, format="json")
    assert again.status_code == 409
    (error,) = again.json()["errors"]
    assert error["code"] == "invalid_transition"
    assert "rejected" in error["detail"]
    order.refresh_from_db()
    assert order.rejection_reason == "no credit"


@pytest.mark.parametrize("reason", [123, 1.5, True, ["x"], {"a": "b"}])
def test_reject_reason_must_be_a_string(as_user, customer, stock, manager, reason):
    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    response = as_user(manager).post(
        f"{ORDERS}{order.pk}/reject/", {"reason": reason}, format="json"
    )
    assert response.status_code == 400
    assert [e["attr"] for e in response.json()["errors"]] == ["reason"]


def test_create_looks_each_product_up_once(
    as_user, customer, stock, django_assert_num_queries, monkeypatch
):
    from orders.api.views import OrderViewSet
    from tests.factories import ProductFactory

    # The throttle's cache reads are the cache backend's business (database or Redis).
    monkeypatch.setattr(OrderViewSet, "get_throttles", lambda self: [])
    ProductFactory(sku="SKU-B")
    client = as_user(customer)
    payload = body(("SKU-A", 1), ("SKU-B", 2))
    with CaptureQueriesContext(connection) as captured:
        assert client.post(ORDERS, payload, format="json").status_code == 201
    product_reads = [q["sql"] for q in captured if 'FROM "orders_product"' in q["sql"]]
    assert len(product_reads) == 1, product_reads
    # Products 1; the order's savepoint 2; order, lines, timeline 3; the approval and analytics
    # runs, each INSERT in its own savepoint 6, each with its `order:<id>` tag row 2; the
    # response's order and lines 2.
    with django_assert_num_queries(16):
        client.post(ORDERS, payload, format="json")
