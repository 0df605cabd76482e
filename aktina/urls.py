from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from aktina.core.auth import TokenObtainView, TokenRotateView
from aktina.core.health import health
from aktina.jobs.metrics import metrics_view

# The admin's left-hand app list repeats its index page and takes 300 px of every changelist:
# without it the run and order lists show every column at 1 400 px (issue 18, defect 6).
admin.site.enable_nav_sidebar = False

api = [
    path("health/", health, name="health"),
    path("auth/token/", TokenObtainView.as_view(), name="token"),
    path("auth/token/rotate/", TokenRotateView.as_view(), name="token-rotate"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("", include("orders.api.urls")),
    path("", include("aktina.notifications.urls")),
    path("analytics/", include("analytics.api.urls")),
    path("jobs/", include("aktina.jobs.console.api.urls")),
    path("ml/", include("ml.api.urls")),
]

urlpatterns = [
    # `make run` prints the site's root: the first page a newcomer opens is the dashboard.
    path("", RedirectView.as_view(url="/dashboard/", permanent=False), name="home"),
    path("admin/", admin.site.urls),
    path("api/", include(api)),
    path("orders/", include("orders.urls")),
    path("dashboard/", include("analytics.urls")),
    path("dashboard/", include("aktina.jobs.console.urls")),
    path("metrics", metrics_view, name="metrics"),
]
