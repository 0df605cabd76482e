"""The signed-in user's inbox: list (own only, filter unread), read one, mark as read."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from aktina.core.api import HasPerm
from aktina.core.filters import StrictBooleanFilter
from aktina.notifications.models import Notification
from aktina.notifications.serializers import NotificationSerializer
from aktina.notifications.services import notification_mark_read


class NotificationFilter(django_filters.FilterSet):
    unread = StrictBooleanFilter(field_name="read_at", lookup_expr="isnull")
    kind = django_filters.CharFilter()

    class Meta:
        model = Notification
        fields = ["unread", "kind"]


class IsRecipient(permissions.BasePermission):
    message = "This notification is addressed to someone else."

    def has_object_permission(self, request, view, obj):
        return obj.recipient_id == request.user.pk


class NotificationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = Notification.objects.none()  # for the schema; get_queryset scopes by user
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter
    permission_classes = [
        permissions.IsAuthenticated,
        HasPerm.of("notifications.view_notification"),
        IsRecipient,
    ]
    ordering_fields = ["created_at"]

    def get_queryset(self):
        qs = Notification.objects.select_related("order")
        if self.action == "list":
            return qs.filter(recipient=self.request.user)
        # Objects are looked up among all, so that someone else's is a 403, not a 404.
        return qs

    @extend_schema(request=None, responses={200: NotificationSerializer})
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        """Mark one of your notifications as read (idempotent)."""
        notification = notification_mark_read(notification=self.get_object())
        return Response(NotificationSerializer(notification).data)
