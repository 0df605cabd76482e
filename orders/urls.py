from django.urls import path

from orders import views

app_name = "orders"

urlpatterns = [
    path("<str:reference>/label/", views.order_label, name="label"),
]
