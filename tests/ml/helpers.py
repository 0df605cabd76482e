"""Shared set-up for the ML app's database tests."""

from __future__ import annotations

from orders.demo import demo_seed_base, demo_seed_history

HISTORY_ORDERS = 300


def seed_history(orders: int = HISTORY_ORDERS) -> None:
    """The demo catalogue and users plus ``orders`` completed orders over two years."""
    demo_seed_base(password="pw-for-tests-1")
    demo_seed_history(orders=orders)
