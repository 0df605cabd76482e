from django.urls import path
from rest_framework.routers import DefaultRouter

from aktina.jobs.console.api.views import (
    ClusterListView,
    QueueListView,
    QueuePauseView,
    QueueResumeView,
    RunViewSet,
)

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
# /api/jobs/runs/, /api/jobs/runs/{id}/, .../retry/, .../cancel/, .../terminate/.
router.register("runs", RunViewSet, basename="jobrun")

urlpatterns = [
    path("clusters/", ClusterListView.as_view(), name="jobs-clusters"),
    path("queues/", QueueListView.as_view(), name="jobs-queues"),
    path("queues/<str:queue>/pause/", QueuePauseView.as_view(), name="jobs-queue-pause"),
    path("queues/<str:queue>/resume/", QueueResumeView.as_view(), name="jobs-queue-resume"),
    *router.urls,
]
