from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The operator's console: queue page, monitored tags, queue-wait alerts, operations API.

    An app of its own inside the job layer (label `console`) so that its models and migrations
    do not touch the ledger's; it reads the ledger and acts through the job layer's services.
    """

    name = "aktina.jobs.console"
    label = "console"
    verbose_name = "Job console"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from aktina.jobs.console.alerts import schedules_ensure_after_migrate

        post_migrate.connect(schedules_ensure_after_migrate, sender=self)
