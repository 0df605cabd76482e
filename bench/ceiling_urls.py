"""The app's URLs plus `POST /bench/ceiling/`: a DRF view doing what any write endpoint must
(token authentication, JSON in and out) and exactly one INSERT. Bench only."""

import uuid
from decimal import Decimal

from django.urls import include, path
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import Product


class CeilingView(APIView):
    """Authenticated like the app (DRF defaults), one insert, no throttle."""

    def post(self, request):
        product = Product.objects.create(
            sku=f"CEIL-{uuid.uuid4().hex}", name="ceiling", unit_price=Decimal("1.00")
        )
        return Response({"id": product.pk}, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("bench/ceiling/", CeilingView.as_view()),
    path("", include("aktina.urls")),
]
