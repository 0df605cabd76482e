from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from analytics import receivers
        from analytics.schedules import schedules_ensure_after_migrate

        receivers.connect()
        post_migrate.connect(schedules_ensure_after_migrate, sender=self)
