from django.urls import path

from aktina.jobs.console import views

app_name = "console"

# Mounted under /dashboard/ beside the business dashboard (aktina/urls.py).
urlpatterns = [
    path("queues/", views.queues, name="queues"),
    path("queues/<str:queue>/retry/", views.queue_retry_failed, name="queue-retry"),
    path("queues/<str:queue>/pause/", views.queue_pause_view, name="queue-pause"),
    path("queues/<str:queue>/resume/", views.queue_resume_view, name="queue-resume"),
    path("tags/", views.tags, name="tags"),
    path("tags/add/", views.tag_add, name="tag-add"),
    path("tags/remove/", views.tag_remove, name="tag-remove"),
]
