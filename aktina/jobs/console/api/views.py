"""The operations API: the console's reads and actions as JSON, with the pages' permissions
(`jobs.view_jobrun` to read, `jobs.operate_jobs` to act).

Terminate asks the cluster holding a running run to stop it (`run_terminate`); the clusters
list is the process table's live rows (`console.health.clusters_panel`).
"""

from django.conf import settings
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from drf_standardized_errors.openapi_serializers import (
    ErrorResponse403Serializer,
    ErrorResponse404Serializer,
)
from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from aktina.core.api import Conflict, HasPerm, client_error_response
from aktina.jobs.console.api.filters import RunFilter
from aktina.jobs.console.api.serializers import (
    ClustersSerializer,
    QueueSerializer,
    RunDetailSerializer,
    RunSerializer,
)
from aktina.jobs.console.health import clusters_panel
from aktina.jobs.lifecycle import RunNotChangeable, run_cancel, run_terminate
from aktina.jobs.models import JobRun
from aktina.jobs.pausing import queue_pause, queue_pauses, queue_resume
from aktina.jobs.retrying import run_retry
from aktina.jobs.selectors import queue_stats

VIEW, OPERATE = "jobs.view_jobrun", "jobs.operate_jobs"
NOT_CHANGEABLE = client_error_response(
    "The run's status does not allow this (code `run_not_changeable`; the detail says why)."
)


def _operate(request) -> None:
    if not request.user.has_perm(OPERATE):
        raise PermissionDenied("You need the jobs.operate_jobs permission (operations).")


class NewestFirst(CursorPagination):
    # A cursor, not page numbers: no COUNT(*) over the ledger, stable under new runs.
    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 200


class RunViewSet(viewsets.ReadOnlyModelViewSet):
    """Runs of the job ledger, newest first."""

    permission_classes = [permissions.IsAuthenticated, HasPerm.of(VIEW)]
    filter_backends = [DjangoFilterBackend]
    filterset_class = RunFilter
    pagination_class = NewestFirst

    def get_queryset(self):
        runs = JobRun.objects.all()
        if self.action == "retrieve":
            runs = runs.prefetch_related("attempt_log", "tags", "retries")
        return runs

    def get_serializer_class(self):
        return RunDetailSerializer if self.action == "retrieve" else RunSerializer

    def _act(self, request, service, status_code=200):
        _operate(request)
        run = self.get_object()
        try:
            result = service(run=run)
        except RunNotChangeable as exc:
            raise Conflict(detail=str(exc), code="run_not_changeable") from exc
        return Response(RunSerializer(result).data, status=status_code)

    @extend_schema(
        request=None,
        responses={201: RunSerializer, 403: ErrorResponse403Serializer, 409: NOT_CHANGEABLE},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Retry a failed or cancelled run as a new run (returned); the old one becomes
        `retried`."""
        return self._act(request, run_retry, status_code=201)

    @extend_schema(
        request=None,
        responses={200: RunSerializer, 403: ErrorResponse403Serializer, 409: NOT_CHANGEABLE},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a queued run. What it was going to do stays undone (an order keeps its
        status): see the run page's cancel confirmation for the run's subjects."""
        return self._act(request, run_cancel)

    @extend_schema(
        request=None,
        responses={200: RunSerializer, 403: ErrorResponse403Serializer, 409: NOT_CHANGEABLE},
    )
    @action(detail=True, methods=["post"])
    def terminate(self, request, pk=None):
        """Stop a running run: the cluster holding it kills the worker running it within a
        guard cycle and ends the run `cancelled`, recording who asked. The run is returned as
        it is now (still running, with `terminate_requested_by` set)."""
        by = request.user.get_username()
        return self._act(request, lambda run: run_terminate(run=run, by=by))


def _queue_rows() -> list[dict]:
    paused = queue_pauses()
    return [{**s, "paused": s["queue"] in paused} for s in queue_stats()]


def _known_queue(queue: str) -> str:
    if queue not in settings.JOBS_QUEUES:
        raise Http404(f"No queue named {queue!r}.")
    return queue


class QueueListView(APIView):
    permission_classes = [permissions.IsAuthenticated, HasPerm.of(VIEW)]

    @extend_schema(responses={200: QueueSerializer(many=True)})
    def get(self, request):
        """Every configured queue: due, delayed, running and failed runs, throughput, waits."""
        return Response(QueueSerializer(_queue_rows(), many=True).data)


class QueueActionView(APIView):
    permission_classes = [permissions.IsAuthenticated, HasPerm.of(VIEW)]
    pause: bool

    def post(self, request, queue: str):
        _operate(request)
        queue = _known_queue(queue)
        if self.pause:
            queue_pause(queue=queue, user=request.user)
        else:
            queue_resume(queue=queue)
        row = next(r for r in _queue_rows() if r["queue"] == queue)
        return Response(QueueSerializer(row).data)


class QueuePauseView(QueueActionView):
    pause = True

    @extend_schema(
        request=None,
        responses={
            200: QueueSerializer,
            403: ErrorResponse403Serializer,
            404: ErrorResponse404Serializer,
        },
    )
    def post(self, request, queue: str):
        """Pause a queue: its runs are still accepted, none starts until it is resumed."""
        return super().post(request, queue)


class QueueResumeView(QueueActionView):
    pause = False

    @extend_schema(
        request=None,
        responses={
            200: QueueSerializer,
            403: ErrorResponse403Serializer,
            404: ErrorResponse404Serializer,
        },
    )
    def post(self, request, queue: str):
        """Resume a paused queue (a queue that was not paused stays as it is)."""
        return super().post(request, queue)


class ClusterListView(APIView):
    permission_classes = [permissions.IsAuthenticated, HasPerm.of(VIEW)]

    @extend_schema(responses={200: ClustersSerializer})
    def get(self, request):
        """Live clusters (heartbeat fresh) with their workers and the runs they hold, processes
        lost lately (not yet rescued), and how many live clusters serve each queue."""
        return Response(ClustersSerializer(clusters_panel()).data)
