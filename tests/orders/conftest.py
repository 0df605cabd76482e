from decimal import Decimal

import pytest

from aktina.core import roles
from aktina.jobs.testing import work_off
from tests.factories import ProductFactory, StockFactory, WarehouseFactory


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks):
    """Perform every queued (and delayed) job inline, with after-commit work executed, until
    nothing is left; returns the number of deliveries."""

    def run() -> int:
        total = 0
        while True:
            with django_capture_on_commit_callbacks(execute=True):
                done = work_off(include_delayed=True)
            total += done
            if not done:
                return total

    return run


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """`with committed(): ...` runs the block's after-commit callbacks (signals, messages)."""

    def ctx():
        return django_capture_on_commit_callbacks(execute=True)

    return ctx


@pytest.fixture
def warehouse(db):
    return WarehouseFactory(code="ATH", name="Athens", capacity=1000)


@pytest.fixture
def product(db):
    return ProductFactory(sku="SKU-A", unit_price=Decimal("10.00"))


@pytest.fixture
def stock(product, warehouse):
    return StockFactory(product=product, warehouse=warehouse, quantity=50)


@pytest.fixture
def manager(make_user):
    return make_user(roles.MANAGER, username="mary")


@pytest.fixture
def inventory_manager(make_user):
    return make_user(roles.INVENTORY_MANAGER, username="ivan")


@pytest.fixture
def operations(make_user):
    return make_user(roles.OPERATIONS, username="otto")
