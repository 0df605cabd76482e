from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.api.serializers import DashboardSerializer
from analytics.selectors import dashboard_analytics


class DashboardView(APIView):
    """Business metrics and job health for staff, served from the cache."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=DashboardSerializer, summary="Analytics dashboard")
    def get(self, request):
        return Response(DashboardSerializer(dashboard_analytics()).data)
