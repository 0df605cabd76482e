import django_filters
from django.conf import settings
from django.db.models import Q

from aktina.jobs.models import JobRun, JobRunTag


class RunFilter(django_filters.FilterSet):
    # A callable: evaluated on each validation, so the choices follow JOBS_QUEUES.
    queue = django_filters.ChoiceFilter(choices=lambda: [(q, q) for q in settings.JOBS_QUEUES])
    status = django_filters.ChoiceFilter(choices=JobRun.Status.choices)
    job = django_filters.CharFilter(
        method="filter_job",
        help_text="A job class path (orders.jobs.GenerateShippingLabelJob) or a django-q2 "
        "task's function path (math.sqrt).",
    )
    tag = django_filters.CharFilter(method="filter_tag", help_text="e.g. order:1234")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = JobRun
        fields = ["queue", "status"]

    def filter_job(self, queryset, name, value):
        return queryset.filter(Q(job_name=value) | Q(task_function=value))

    def filter_tag(self, queryset, name, value):
        # The (tag, run) index answers; see aktina.jobs.tagging.runs_tagged.
        return queryset.filter(pk__in=JobRunTag.objects.filter(tag=value).values("run_id"))
