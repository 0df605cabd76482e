"""The business dashboard page (staff only); the queue page is the job console's."""

from __future__ import annotations

from django.shortcuts import render

from aktina.core.charts import bar_chart, funnel_chart
from aktina.core.pages import page_needs
from analytics.selectors import dashboard_analytics
from ml.selectors import dashboard_ml_summary


@page_needs("analytics.view_dailymetric")
def dashboard(request):
    data = dashboard_analytics()
    days = data["days_90"]
    context = {
        "data": data,
        "revenue_chart": bar_chart(
            [(d["day"].strftime("%d %b"), d["revenue"]) for d in days],
            chart_id="chart-revenue", title="Revenue per day (90 days)",
        ),
        "orders_chart": bar_chart(
            [(d["day"].strftime("%d %b"), d["orders"]) for d in days],
            chart_id="chart-orders", title="Orders per day (90 days)", color="#6a1b9a",
        ),
        "funnel_chart": funnel_chart(
            [(s["label"], s["orders"]) for s in data["status_funnel"]],
            chart_id="chart-funnel", title="Orders of the last 90 days by status",
        ),
        "ml": dashboard_ml_summary(),
    }  # fmt: skip
    return render(request, "analytics/dashboard.html", context)
