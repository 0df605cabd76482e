"""`manage.py seed_demo`: demo data that a newcomer can look at straight away.

It lives in the project's core app, not in orders, because it drives three apps: orders
writes the catalogue and history, analytics rebuilds its metrics from them and ml computes
the first segments and forecasts (orders never imports the other apps). Those services
(pandas, scikit-learn) are imported in ``handle``, after the arguments are parsed, so a
mistyped option answers at once.
"""

import time

from django.core.management.base import CommandError

from aktina.core.commands import OneLineErrorsCommand
from orders.models import Product


class Command(OneLineErrorsCommand):
    help = (
        "Create demo warehouses, catalogue, stock and users; optionally order history, then "
        "rebuild the analytics and compute one current ML run so the dashboard shows them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--password", default="aktina-demo")
        parser.add_argument("--orders", type=int, default=0, help="historical orders to add")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when products already exist"
        )

    def handle(self, *args, password, orders, seed, if_empty, **options):
        from analytics.services import metrics_rebuild
        from ml.services import ml_refresh
        from orders.demo import demo_seed_base, demo_seed_history

        if if_empty and Product.objects.exists():
            self.stdout.write("Database already has data; not seeding.")
            return
        if orders < 0:
            raise CommandError("--orders must be 0 or more.")
        if len(password) < 8:
            raise CommandError("--password must be at least 8 characters.")
        base = demo_seed_base(password=password, seed=seed)
        added = demo_seed_history(orders=orders, seed=seed)
        self.stdout.write(
            f"{base['warehouses']} warehouses, {base['products']} products, "
            f"{added} historical orders added."
        )
        if added:
            # Bulk-inserted history sends no signals: without these the first dashboard shows
            # only orders placed after start-up and no segments or forecasts.
            started = time.perf_counter()
            metrics_rebuild()
            run = ml_refresh()
            self.stdout.write(
                f"Analytics rebuilt and ML run #{run.pk} current ({run.customers} customers "
                f"segmented, {run.products} products forecast) in "
                f"{time.perf_counter() - started:.1f} s."
            )
        self.stdout.write("Users (password: {}): {}".format(password, ", ".join(base["users"])))
