from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpResponse
from django.template.loader import render_to_string
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from drf_standardized_errors.openapi_serializers import ErrorResponse403Serializer
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from aktina.core.api import Conflict, HasPerm, client_error_response
from aktina.core.idempotency import HEADER as IDEMPOTENCY_HEADER
from aktina.core.idempotency import idempotent_response
from orders.api.filters import OrderFilter, ProductFilter, StockFilter
from orders.api.serializers import (
    OrderCancelSerializer,
    OrderCreateSerializer,
    OrderDetailSerializer,
    OrderRejectSerializer,
    OrderSerializer,
    ProductSerializer,
    StockReceiveSerializer,
    StockSerializer,
    WarehouseSerializer,
)
from orders.models import Order
from orders.selectors import (
    order_detail_queryset,
    order_job_runs,
    order_list,
    product_list,
    stock_list,
    warehouse_list,
)
from orders.services import (
    InvalidTransition,
    order_approve,
    order_cancel,
    order_create,
    order_reject,
    stock_receive,
)


class ProductViewSet(viewsets.ReadOnlyModelViewSet):
    """The catalogue with what can still be promised (on hand minus allocated, all warehouses)."""

    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    permission_classes = [permissions.IsAuthenticated, HasPerm.of("orders.view_product")]
    ordering_fields = ["sku", "name", "unit_price", "quantity_available", "max_orderable"]

    def get_queryset(self):
        return product_list()


def _label_not_ready(order: Order) -> str:
    """When the label will exist, in words, for an order that has none yet."""
    minutes = max(1, round(settings.ORDER_LABEL_DELAY_SECONDS / 60))
    waiting = {
        Order.Status.FULFILLING: f"it is generated about {minutes} minutes after fulfilment "
        "started",
        Order.Status.APPROVED: "the order is approved and waits for fulfilment; the label "
        f"follows about {minutes} minutes after fulfilment starts",
    }.get(order.status)
    if waiting is None:
        if order.status in {Order.Status.PENDING, Order.Status.AWAITING_APPROVAL}:
            waiting = "the order must be approved and fulfilled first"
        else:
            waiting = "this order will not ship, so it will have no label"
    return f"No label yet: the order is {order.status}; {waiting}."


def conflict(exc: InvalidTransition) -> Conflict:
    return Conflict(detail=str(exc), code="invalid_transition")


IDEMPOTENCY_KEY = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="A client-chosen key (at most 255 characters, no control characters), kept "
    "24 h per user: a retry with the same key and body returns the first response (201 and "
    "the first order) with `Idempotent-Replayed: true` instead of placing a second order.",
)
CONFLICT = client_error_response(
    "The order's status does not allow this (code `invalid_transition`; the detail names the "
    "current status)."
)
KEY_IN_PROGRESS = client_error_response(
    "A request with this Idempotency-Key is still in progress (code "
    "`idempotency_key_in_progress`): retry it."
)
KEY_REUSED = client_error_response(
    "This Idempotency-Key was used for a different request body (code `idempotency_key_reused`)."
)


@extend_validation_errors(["invalid"], field_name=IDEMPOTENCY_HEADER, actions=["create"])
# A missing or null `items` is reported on `items` itself (the library documents these codes
# under `items.non_field_errors`, where the list's own errors go).
@extend_validation_errors(["required", "null"], field_name="items", actions=["create"])
@extend_validation_errors(["null"], field_name="items.INDEX", actions=["create"])
class OrderViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Orders: placing needs orders.add_order; everything else orders.view_order, over the
    caller's own orders, or everyone's with orders.view_all_orders."""

    queryset = Order.objects.none()  # for the schema; get_queryset scopes by user
    filterset_class = OrderFilter
    ordering_fields = ["created_at", "total_amount", "status"]
    throttle_scope = "order_create"

    def get_queryset(self) -> QuerySet[Order]:
        if self.action in {"retrieve", "label"}:
            return order_detail_queryset(user=self.request.user)
        return order_list(user=self.request.user)

    def get_permissions(self):
        perm = "orders.add_order" if self.action == "create" else "orders.view_order"
        return [permissions.IsAuthenticated(), HasPerm.of(perm)()]

    def get_serializer_class(self):
        return {
            "create": OrderCreateSerializer,
            "retrieve": OrderDetailSerializer,
            "reject": OrderRejectSerializer,
            "cancel": OrderCancelSerializer,
        }.get(self.action, OrderSerializer)

    def get_throttles(self):
        return [ScopedRateThrottle()] if self.action == "create" else super().get_throttles()

    @extend_schema(
        request=OrderCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: OrderSerializer, 409: KEY_IN_PROGRESS, 422: KEY_REUSED},
    )
    def create(self, request, *args, **kwargs):
        return idempotent_response(request=request, respond=lambda: self._place(request))

    def _place(self, request) -> Response:
        serializer = OrderCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        order = order_create(
            customer=request.user,
            items=[dict(line) for line in data["items"]],
            auto_approve=data["auto_approve"],
            priority=data["priority"],
        )
        order = order_list(user=request.user).get(pk=order.pk)
        data = OrderSerializer(order, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, *args, **kwargs):
        order = self.get_object()
        runs = order_job_runs(order=order)
        if not request.user.has_perm("jobs.view_jobrun"):
            # Job errors are for operators: exception text can quote internals (hosts, SQL).
            for run in runs:
                run.last_error = ""
        context = {**self.get_serializer_context(), "job_runs": runs}
        return Response(OrderDetailSerializer(order, context=context).data)

    @extend_schema(responses={(200, "text/html"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def label(self, request, pk=None):
        """The printable shipping label (HTML) of an order with a shipment: its owner and staff."""
        order = self.get_object()
        if not order.tracking_number:
            raise NotFound(_label_not_ready(order), code="label_not_ready")
        return HttpResponse(render_to_string("orders/label.html", {"order": order}, request))

    def _act(self, request, service, **kwargs):
        order = self.get_object()
        try:
            order = service(order=order, **kwargs)
        except InvalidTransition as exc:
            raise conflict(exc) from exc
        order = order_list(user=request.user).get(pk=order.pk)
        return Response(OrderSerializer(order, context=self.get_serializer_context()).data)

    def _require(
        self, request, perm: str, message: str = "Managers approve and reject orders."
    ) -> None:
        if not request.user.has_perm(perm):
            raise PermissionDenied(message)

    @extend_schema(
        request=None,
        responses={200: OrderSerializer, 403: ErrorResponse403Serializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve an order that awaits approval (managers)."""
        self._require(request, "orders.approve_order")
        return self._act(request, order_approve, approved_by=request.user)

    @extend_schema(
        request=OrderRejectSerializer,
        responses={200: OrderSerializer, 403: ErrorResponse403Serializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Reject an order that awaits approval, with a reason the customer will read."""
        self._require(request, "orders.approve_order")
        serializer = OrderRejectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._act(
            request,
            order_reject,
            reason=serializer.validated_data["reason"],
            rejected_by=request.user,
        )

    @extend_schema(
        request=OrderCancelSerializer,
        responses={200: OrderSerializer, 403: ErrorResponse403Serializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel: the customer before fulfilment, staff until it ships. Releases stock."""
        if self.get_object().customer_id != request.user.pk:
            # Staff cancel other people's orders only with the right to change orders (an
            # inventory manager is staff without it).
            self._require(
                request, "orders.change_order", "Only the customer or order staff may cancel it."
            )
        serializer = OrderCancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._act(
            request,
            order_cancel,
            cancelled_by=request.user,
            reason=serializer.validated_data["reason"],
        )


class WarehouseViewSet(viewsets.ReadOnlyModelViewSet):
    """Warehouses with their staging capacity and the units staged there now (staff)."""

    serializer_class = WarehouseSerializer
    permission_classes = [permissions.IsAuthenticated, HasPerm.of("orders.view_warehouse")]
    ordering_fields = ["code", "capacity", "staged"]

    def get_queryset(self):
        return warehouse_list()


class StockViewSet(viewsets.ReadOnlyModelViewSet):
    """Stock per (product, warehouse): on hand, allocated, available (staff)."""

    serializer_class = StockSerializer
    filterset_class = StockFilter
    permission_classes = [permissions.IsAuthenticated, HasPerm.of("orders.view_stock")]
    ordering_fields = ["quantity", "quantity_allocated"]

    def get_queryset(self):
        return stock_list()


class StockReceiveView(GenericAPIView):
    """Record units arriving at a warehouse (inventory managers); short orders are re-queued."""

    serializer_class = StockReceiveSerializer
    permission_classes = [permissions.IsAuthenticated, HasPerm.of("orders.receive_stock")]

    @extend_schema(request=StockReceiveSerializer, responses={200: StockSerializer})
    def post(self, request):
        serializer = StockReceiveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        stock = stock_receive(**serializer.validated_data, received_by=request.user)
        stock = stock_list().get(pk=stock.pk)
        return Response(StockSerializer(stock).data)
