from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders and inventory"

    def ready(self) -> None:
        from orders import receivers

        receivers.connect()
