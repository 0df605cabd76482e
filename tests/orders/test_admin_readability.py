"""Issue 18, defect 6 (orders side): refusals read as sentences; a placed order's page offers
no Save or Delete."""

import pytest
from django.db.models import F

from orders.models import Order, Stock
from orders.services import order_create

pytestmark = pytest.mark.django_db


def test_a_refused_stock_adjustment_reads_as_a_sentence_not_a_dict(
    client, inventory_manager, stock
):
    Stock.objects.filter(pk=stock.pk).update(quantity_allocated=10)
    client.force_login(inventory_manager)
    response = client.post(
        "/admin/orders/stock/",
        {
            "action": "adjust",
            "_selected_action": [stock.pk],
            "apply": "1",
            "quantity": "5",
            "reason": "cycle count",
        },
        follow=True,
    )
    page = response.content.decode()
    assert "10 units are allocated to orders; the count cannot go below that." in page
    assert "{&#x27;quantity&#x27;" not in page
    assert "[&#x27;" not in page
    assert Stock.objects.filter(pk=stock.pk, quantity=F("quantity")).get().quantity == 50


def test_a_placed_orders_page_has_no_save_or_delete(client, superuser, customer, stock):
    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    client.force_login(superuser)
    page = client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert 'name="_continue"' not in page
    assert f"/admin/orders/order/{order.pk}/delete/" not in page
    assert (
        client.post(f"/admin/orders/order/{order.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert Order.objects.filter(pk=order.pk).exists()
    # The workflow's actions stay on the changelist.
    changelist = client.get("/admin/orders/order/").content.decode()
    assert 'value="cancel"' in changelist
    assert 'value="delete_selected"' not in changelist
