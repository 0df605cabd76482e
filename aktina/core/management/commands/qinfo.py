"""django-q2's `qinfo`, with secrets masked: `qinfo --config` prints django-q2's whole
configuration, which includes Django's SECRET_KEY and any broker password."""

from django.core.management.base import OutputWrapper
from django_q.management.commands.qinfo import Command as QInfoCommand

from aktina.core.redaction import redact


class _Redacting(OutputWrapper):
    def write(self, msg="", style_func=None, ending=None):
        super().write(redact(str(msg)), style_func, ending)


class Command(QInfoCommand):
    def handle(self, *args, **options):
        self.stdout = _Redacting(self.stdout._out)
        self.stderr = _Redacting(self.stderr._out)
        return super().handle(*args, **options)
