from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "aktina.jobs"
    label = "jobs"
    verbose_name = "Background jobs"

    def ready(self) -> None:
        import importlib

        from django.conf import settings
        from django.db.models.signals import post_migrate
        from django.utils.module_loading import autodiscover_modules
        from django_q.signals import post_spawn

        from aktina.jobs import startup

        # Workers resolve job names only from these registries, so every app's jobs and tasks
        # modules are imported up front.
        autodiscover_modules("jobs", "tasks")
        for module in settings.JOBS_IMPORT:
            importlib.import_module(module)
        post_spawn.connect(startup.on_worker_spawn, dispatch_uid="aktina-jobs-worker-spawn")
        post_migrate.connect(startup.schedules_ensure_after_migrate, sender=self)
