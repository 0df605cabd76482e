from decimal import Decimal

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.factories import ProductFactory, StockFactory, WarehouseFactory


@pytest.fixture
def stock(db):
    product = ProductFactory(sku="SKU-A", unit_price=Decimal("10.00"))
    return StockFactory(product=product, warehouse=WarehouseFactory(code="ATH"), quantity=50)


def body(*lines, **extra):
    return {"items": [{"sku": s, "quantity": q} for s, q in lines], **extra}


@pytest.fixture(scope="session")
def openapi():
    return SchemaGenerator().get_schema(request=None, public=True)
