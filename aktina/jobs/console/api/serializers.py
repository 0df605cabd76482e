from django.conf import settings
from rest_framework import serializers

from aktina.jobs.console.runs import run_arguments
from aktina.jobs.models import JobAttempt, JobRun
from aktina.jobs.selectors import run_label


class RunSerializer(serializers.ModelSerializer):
    job = serializers.SerializerMethodField(
        help_text="What operators call the run: a django-q2 task's function path (`math.sqrt`) "
        "or the job class's name."
    )

    class Meta:
        model = JobRun
        fields = [
            "id", "job", "job_name", "task_function", "queue", "status", "priority", "attempts",
            "tries", "created_at", "available_at", "started_at", "finished_at", "worker",
            "last_error", "retry_of", "terminate_requested_by",
        ]  # fmt: skip
        read_only_fields = fields

    def get_job(self, run: JobRun) -> str:
        return run_label(run)


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobAttempt
        fields = [
            "number", "outcome", "started_at", "finished_at", "worker", "error", "error_class",
            "traceback",
        ]  # fmt: skip
        read_only_fields = fields


class ArgumentsSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["job", "task"])
    payload = serializers.CharField(required=False, help_text="A job's stored JSON, redacted.")
    function = serializers.CharField(required=False, allow_null=True)
    args = serializers.CharField(required=False, allow_null=True)
    kwargs = serializers.CharField(required=False, allow_null=True)
    error = serializers.CharField(required=False, allow_null=True)


class RunDetailSerializer(RunSerializer):
    arguments = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    attempt_log = AttemptSerializer(many=True, read_only=True)
    retries = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "arguments", "tags", "attempt_log", "retries"]
        read_only_fields = fields

    def get_arguments(self, run: JobRun) -> ArgumentsSerializer:
        return ArgumentsSerializer(run_arguments(run)).data

    def get_tags(self, run: JobRun) -> list[str]:
        return [t.tag for t in run.tags.all()]


class QueueSerializer(serializers.Serializer):
    queue = serializers.ChoiceField(choices=[])
    pending = serializers.IntegerField()
    delayed = serializers.IntegerField()
    running = serializers.IntegerField()
    failed = serializers.IntegerField()
    throughput_1h = serializers.IntegerField()
    throughput_24h = serializers.IntegerField()
    wait_p50_ms = serializers.FloatField(allow_null=True)
    wait_p95_ms = serializers.FloatField(allow_null=True)
    run_p50_ms = serializers.FloatField(allow_null=True)
    run_p95_ms = serializers.FloatField(allow_null=True)
    oldest_waiting_at = serializers.DateTimeField(allow_null=True)
    paused = serializers.BooleanField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["queue"].choices = [(q, q) for q in settings.JOBS_QUEUES]


class ProcessSerializer(serializers.Serializer):
    name = serializers.CharField(source="cluster")
    kind = serializers.CharField()
    host = serializers.CharField()
    pid = serializers.IntegerField()
    queues = serializers.ListField(child=serializers.CharField())
    started = serializers.DateTimeField(source="started_at")
    last_seen = serializers.DateTimeField()


class HeldRunSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="run.pk")
    job = serializers.CharField(source="label")
    in_worker = serializers.BooleanField(
        help_text="In a worker's hands at the cluster's last heartbeat (else claimed, waiting)."
    )
    seconds = serializers.FloatField(allow_null=True, help_text="Since it was claimed.")
    terminate_requested_by = serializers.CharField(source="run.terminate_requested_by")


class LiveClusterSerializer(serializers.Serializer):
    def to_representation(self, instance):
        return {
            **ProcessSerializer(instance["process"]).data,
            "workers": ProcessSerializer(instance["workers"], many=True).data,
            "held_runs": HeldRunSerializer(instance["held"], many=True).data,
        }


class ClustersSerializer(serializers.Serializer):
    live = LiveClusterSerializer(many=True)
    lost = ProcessSerializer(
        many=True,
        help_text="Heartbeat stale within the last hour and not yet rescued (the table keeps "
        "no history: a rescued process's row is deleted).",
    )
    served = serializers.DictField(
        child=serializers.IntegerField(), help_text="Per queue: live clusters serving it."
    )
