from rest_framework import serializers

from aktina.notifications.models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    order = serializers.CharField(
        source="order.reference", read_only=True, default=None, allow_null=True
    )
    unread = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "kind", "subject", "body", "order", "created_at", "read_at", "unread"]
        read_only_fields = fields

    def get_unread(self, notification) -> bool:
        return notification.read_at is None
