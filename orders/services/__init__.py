"""Every write of the order workflow: one transaction and one state change per service.

Split by concern — `placement` (creating orders, privileged fields), `approval` (approve,
reject, reminders), `cancellation`, `fulfilment` (allocation, shortage, shipment, shipping) and
`stock` (receive, adjust). Callers import from `orders.services`.

Each transition locks the order row, returns early when the order is already where the service
would take it (jobs run at least once, so a re-run must be harmless), and raises
`InvalidTransition` when the current status does not allow it. Follow-up work is announced with
the signals of `orders.signals`, sent inside the transaction; the services never import jobs.
"""

from orders.allocation import InsufficientStock
from orders.services.approval import (
    approval_reminder_key,
    order_approval_decide,
    order_approval_remind,
    order_approval_reminders_cancel,
    order_approve,
    order_reject,
    order_request_approval,
)
from orders.services.cancellation import order_cancel
from orders.services.common import MAX_QUANTITY, InvalidTransition
from orders.services.fulfilment import (
    order_complete,
    order_fulfil,
    order_fulfilling_notify,
    order_fulfilment_retry,
    order_mark_fulfilment_failed,
    order_mark_inventory_shortage,
    order_ship,
    order_shipment_create,
    orders_shortage_requeue,
)
from orders.services.placement import (
    PRIVILEGED_FIELDS,
    order_create,
    order_privileges_check,
    order_register_created,
)
from orders.services.stock import stock_adjust, stock_receive

__all__ = [
    "MAX_QUANTITY",
    "PRIVILEGED_FIELDS",
    "InsufficientStock",
    "InvalidTransition",
    "approval_reminder_key",
    "order_approval_decide",
    "order_approval_remind",
    "order_approval_reminders_cancel",
    "order_approve",
    "order_cancel",
    "order_complete",
    "order_create",
    "order_fulfil",
    "order_fulfilling_notify",
    "order_fulfilment_retry",
    "order_mark_fulfilment_failed",
    "order_mark_inventory_shortage",
    "order_privileges_check",
    "order_register_created",
    "order_reject",
    "order_request_approval",
    "order_ship",
    "order_shipment_create",
    "orders_shortage_requeue",
    "stock_adjust",
    "stock_receive",
]
