from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "aktina.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from aktina.notifications import receivers

        receivers.connect()
