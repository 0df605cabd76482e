from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "aktina.core"
    label = "core"
    verbose_name = "Aktina core"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from aktina.core.roles import roles_sync_after_migrate
        from aktina.core.schedules import schedules_ensure_after_migrate

        # Roles reference permissions, which Django itself creates in post_migrate.
        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="aktina-roles-sync")
        post_migrate.connect(schedules_ensure_after_migrate, sender=self)
