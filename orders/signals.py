"""Domain events of the order workflow. Only definitions live here (django-oscar style):
the services send them after their transaction commits; other apps connect receivers in
their AppConfig.ready(), and the orders app never imports those apps.
"""

from django.dispatch import Signal

# args: order
order_placed = Signal()
# args: order, old_status, new_status
order_status_changed = Signal()
# args: order
order_fulfilled = Signal()
# args: order
order_shipped = Signal()
