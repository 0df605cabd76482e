"""django-q2's `qcluster`, with a sentinel that survives a child killed outright
(aktina.jobs.sentinel). Lives in aktina.core because that app comes before django_q."""

from django_q.management.commands.qcluster import Command as QClusterCommand

from aktina.jobs import sentinel


class Command(QClusterCommand):
    def handle(self, *args, **options):
        sentinel.install()
        return super().handle(*args, **options)
