"""ML results over HTTP. Everything is read from the current runs (see ml.selectors).

Access: business data, each behind the view permission of its model that a staff role grants
(aktina.core.roles): segments (ml.view_customersegment; the run's metrics and who is in them),
forecasts (ml.view_productforecast: sales volumes per product), runs (ml.view_predictionrun).
Customers see none of it.
"""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import generics
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from aktina.core.api import HasPerm
from ml.api.serializers import (
    ForecastQuerySerializer,
    ForecastSerializer,
    PredictionRunSerializer,
    SegmentQuerySerializer,
    SegmentsSerializer,
)
from ml.selectors import forecast_list, run_list, segment_members, segmentation_summary


class SegmentsView(APIView):
    """Current customer segments and who is in them."""

    permission_classes = [IsAuthenticated, HasPerm.of("ml.view_customersegment")]

    @extend_schema(
        summary="Customer segments",
        responses=SegmentsSerializer,
        parameters=[
            OpenApiParameter("segment", str, description="Members of this segment only."),
            OpenApiParameter("page", int, description="Page of the member list."),
        ],
    )
    def get(self, request):
        data = dict(segmentation_summary())
        query = SegmentQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        members = segment_members(segment=query.validated_data.get("segment") or None)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(members, request, view=self)
        data["customers"] = {
            "count": paginator.page.paginator.count,
            "next": paginator.get_next_link(),
            "previous": paginator.get_previous_link(),
            "results": page,
        }
        return Response(SegmentsSerializer(data).data)


# The `sku` query parameter is read by a serializer, not django-filter: its 400 is declared here.
@extend_validation_errors(
    ["invalid", "max_length", "null_characters_not_allowed", "surrogate_characters_not_allowed"],
    field_name="sku",
    methods=["get"],
)
@extend_schema(
    summary="Sales forecasts",
    parameters=[OpenApiParameter("sku", str, description="Only this product.")],
)
class ForecastListView(generics.ListAPIView):
    """Current forecast per product: points with 80 % intervals and backtest metrics (staff)."""

    permission_classes = [IsAuthenticated, HasPerm.of("ml.view_productforecast")]
    serializer_class = ForecastSerializer
    filter_backends = []

    def get_queryset(self):
        # A list from the cache, not a queryset: pagination works on both.
        query = ForecastQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return forecast_list(sku=query.validated_data.get("sku") or None)


@extend_schema(summary="ML refresh runs")
class RunListView(generics.ListAPIView):
    """Every refresh, newest first, with status, counts, metrics and errors (staff)."""

    permission_classes = [IsAuthenticated, HasPerm.of("ml.view_predictionrun")]
    serializer_class = PredictionRunSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_fields = ["status"]

    def get_queryset(self):
        return run_list()
