from django.urls import path

from ml.api.views import ForecastListView, RunListView, SegmentsView

urlpatterns = [
    path("segments/", SegmentsView.as_view(), name="ml-segments"),
    path("forecasts/", ForecastListView.as_view(), name="ml-forecasts"),
    path("runs/", RunListView.as_view(), name="ml-runs"),
]
