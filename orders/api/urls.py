from django.urls import path
from rest_framework.routers import DefaultRouter

from orders.api.views import (
    OrderViewSet,
    ProductViewSet,
    StockReceiveView,
    StockViewSet,
    WarehouseViewSet,
)

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("products", ProductViewSet, basename="product")
router.register("orders", OrderViewSet, basename="order")
router.register("warehouses", WarehouseViewSet, basename="warehouse")
router.register("stock", StockViewSet, basename="stock")

urlpatterns = [
    # Before the router, so "receive" is not taken for a stock id.
    path("stock/receive/", StockReceiveView.as_view(), name="stock-receive"),
    *router.urls,
]
