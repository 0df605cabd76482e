from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from analytics import receivers  # noqa: F401  (connects the order event receivers)
        from analytics.schedules import schedules_ensure_after_migrate

        post_migrate.connect(schedules_ensure_after_migrate, sender=self)
