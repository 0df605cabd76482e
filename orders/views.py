"""Pages outside the API: the printable shipping label of the built-in carrier."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from orders.selectors import order_detail_queryset


@login_required(login_url="admin:login")
def order_label(request: HttpRequest, reference: str) -> HttpResponse:
    """Staff or the order's customer; anyone else gets a 404 (no hint the order exists)."""
    order = order_detail_queryset(user=request.user).filter(reference=reference).first()
    if order is None or not order.tracking_number:
        raise Http404("No label for this order.")
    return render(request, "orders/label.html", {"order": order})
