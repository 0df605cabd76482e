"""Domain events of the order workflow. Only definitions live here (django-oscar style).

The services send them INSIDE their transaction, so whatever a receiver writes (a job run in
the ledger) commits or rolls back with the change that caused it. Receivers: `orders/receivers.py`
(the workflow's own jobs), `analytics/receivers.py`; each connected in its AppConfig.ready().
Receivers must only write to the database: no network call, no e-mail.
"""

from django.dispatch import Signal

# args: order
order_placed = Signal()
# args: order, old_status, new_status
order_status_changed = Signal()
# args: order — approved (or re-queued) and ready to be fulfilled
order_fulfilment_requested = Signal()
# args: order, round_ — managers should be reminded of this order later (reminder `round_`)
order_approval_reminder_due = Signal()
# args: order
order_fulfilled = Signal()
# args: stock, quantity — units arrived; orders short of the product may now ship
stock_received = Signal()
