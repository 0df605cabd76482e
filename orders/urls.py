from django.urls import re_path

from orders import views

app_name = "orders"

urlpatterns = [
    # References are letters, digits and dashes (imported ones too); anything else is a plain
    # 404 from the resolver instead of a database error (PostgreSQL rejects NUL characters).
    re_path(r"^(?P<reference>[A-Za-z0-9-]{1,20})/label/$", views.order_label, name="label"),
]
