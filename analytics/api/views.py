from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from aktina.core.api import HasPerm
from analytics.api.serializers import DashboardSerializer
from analytics.selectors import dashboard_analytics


class DashboardView(APIView):
    """Business metrics and job health for staff, served from the cache."""

    permission_classes = [IsAuthenticated, HasPerm.of("analytics.view_dailymetric")]

    @extend_schema(responses=DashboardSerializer, summary="Analytics dashboard")
    def get(self, request):
        return Response(DashboardSerializer(dashboard_analytics()).data)
