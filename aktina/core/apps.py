from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "aktina.core"
    label = "core"
    verbose_name = "Aktina core"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_migrate, pre_save

        from aktina.core.roles import roles_sync_after_migrate
        from aktina.core.schedules import schedules_ensure_after_migrate
        from aktina.core.tokens import tokens_revoke_on_credentials_change

        # Roles reference permissions, which Django itself creates in post_migrate.
        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="aktina-roles-sync")
        post_migrate.connect(schedules_ensure_after_migrate, sender=self)
        # A new password or a deactivation ends the user's API tokens.
        pre_save.connect(
            tokens_revoke_on_credentials_change,
            sender=get_user_model(),
            dispatch_uid="aktina-tokens-revoke",
        )
