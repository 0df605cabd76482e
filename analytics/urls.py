from django.urls import path

from analytics import views

app_name = "analytics"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("queues/", views.queues, name="queues"),
    path("queues/<str:queue>/retry/", views.queue_retry_failed, name="queue-retry"),
    path("queues/<str:queue>/pause/", views.queue_pause_view, name="queue-pause"),
    path("queues/<str:queue>/resume/", views.queue_resume_view, name="queue-resume"),
]
