from django.apps import AppConfig


class MlConfig(AppConfig):
    name = "ml"
    verbose_name = "ML predictions"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from ml.schedules import schedules_ensure_after_migrate

        post_migrate.connect(schedules_ensure_after_migrate, sender=self)
