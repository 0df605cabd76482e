from aktina.core.commands import OneLineErrorsCommand
from analytics.services import metrics_rebuild


class Command(OneLineErrorsCommand):
    help = "Recompute every analytics metric from the orders (bulk; safe to run any time)."

    def handle(self, *args, **options):
        counts = metrics_rebuild()
        self.stdout.write(
            self.style.SUCCESS(
                "Rebuilt analytics from {orders} orders: {days} days, {customers} customers, "
                "{products} products.".format(**counts)
            )
        )
