"""`manage.py import_orders`: checked rows, known products, no future, no double import."""

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from aktina.core import roles
from orders.models import Order, OrderItem, Product
from tests.commands import manage, run

HEADER = "customer_id,date,sku,quantity,unit_price\n"


@pytest.fixture
def csv_file(tmp_path):
    def write(text: str, name: str = "orders.csv") -> str:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


@pytest.fixture
def catalogue(db):
    for sku in ("SKU-NEW", "SKU-OTHER", "SKU-A"):
        Product.objects.create(sku=sku, name=f"Known {sku}", unit_price=Decimal("9.99"))


GOOD = (
    HEADER
    + "42,2024-03-01,SKU-NEW,2,10.50\n"
    + "42,2024-03-01T16:30:00,SKU-NEW,1,10.50\n"
    + "42,2024-03-02,SKU-OTHER,5,3\n"
    + "7,2024-03-01,SKU-NEW,1,11.00\n"
)


def test_import_orders_groups_lines_per_customer_and_day(csv_file, catalogue):
    out, err = run("import_orders", csv_file(GOOD))

    assert err == ""
    assert "Imported 4 lines as 3 completed orders (2 new customers, 0 new" in out
    customer = get_user_model().objects.get(username="customer-42")
    assert not customer.has_usable_password()
    assert customer.groups.filter(name=roles.CUSTOMER).exists()
    orders = Order.objects.filter(customer=customer).order_by("created_at")
    assert [o.items.count() for o in orders] == [2, 1]
    first = orders[0]
    assert first.status == Order.Status.COMPLETED
    assert first.total_amount == Decimal("31.50")
    assert first.reference.startswith("IMP-")
    # The catalogue's product is used as it is, not renamed or repriced.
    assert Product.objects.get(sku="SKU-NEW").name == "Known SKU-NEW"
    assert OrderItem.objects.count() == 4


def test_import_orders_reuses_existing_customers(csv_file, catalogue, make_user):
    make_user(roles.CUSTOMER, username="customer-42")

    out, _ = run("import_orders", csv_file(GOOD))

    assert "(1 new customers, 0 new inactive products)" in out


# --- unknown skus -------------------------------------------------------------------------


def test_an_unknown_sku_is_an_error_and_nothing_is_imported(csv_file, db):
    Product.objects.create(sku="SKU-NEW", name="Known", unit_price=Decimal("9.99"))
    path = csv_file(GOOD)

    err = StringIO()
    with pytest.raises(CommandError, match="1 invalid row"):
        call_command("import_orders", path, stdout=StringIO(), stderr=err)
    assert f"{path}:4: sku 'SKU-OTHER' is not in the catalogue" in err.getvalue()

    assert not Order.objects.exists()
    assert Product.objects.count() == 1
    assert not get_user_model().objects.filter(username__startswith="customer-").exists()


def test_create_products_makes_unknown_skus_inactive(csv_file, db):
    out, _ = run("import_orders", csv_file(GOOD), "--create-products")

    assert "(2 new customers, 2 new inactive products)" in out
    created = Product.objects.get(sku="SKU-NEW")
    assert created.active is False
    assert created.unit_price == Decimal("10.50")
    assert not Product.objects.filter(active=True).exists()


# --- dates --------------------------------------------------------------------------------


def test_a_date_after_today_is_an_error(csv_file, catalogue):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    path = csv_file(
        HEADER
        + "1,2024-01-05,SKU-A,2,4.00\n"
        + "2,2099-01-01,SKU-A,1,4.00\n"
        + f"3,{tomorrow.isoformat()},SKU-A,1,4.00\n"
    )

    err = StringIO()
    with pytest.raises(CommandError, match="2 invalid row"):
        call_command("import_orders", path, stdout=StringIO(), stderr=err)

    assert not Order.objects.exists()
    assert f"{path}:3: date '2099-01-01' is in the future" in err.getvalue()
    assert f"{path}:4: date '{tomorrow.isoformat()}' is in the future" in err.getvalue()


def test_a_date_of_today_is_imported_and_never_after_now(csv_file, catalogue):
    today = timezone.localdate()

    run("import_orders", csv_file(HEADER + f"1,{today.isoformat()},SKU-A,1,4.00\n"))

    assert Order.objects.get().created_at <= timezone.now()


# --- imported once ------------------------------------------------------------------------


def test_importing_the_same_file_again_adds_nothing(csv_file, catalogue):
    path = csv_file(GOOD)
    run("import_orders", path)
    orders, lines = Order.objects.count(), OrderItem.objects.count()

    out, _ = run("import_orders", path)

    assert (Order.objects.count(), OrderItem.objects.count()) == (orders, lines)
    assert "Imported 0 lines as 0 completed orders" in out
    assert "skipped 4 lines imported before" in out


def test_an_overlapping_file_adds_only_the_new_lines(csv_file, catalogue):
    run("import_orders", csv_file(GOOD, name="march.csv"))
    later = [*GOOD.splitlines(keepends=True)[3:], "42,2024-03-09,SKU-A,4,2.00\n"]

    out, _ = run("import_orders", csv_file(HEADER + "".join(later), name="later.csv"))

    assert "Imported 1 lines as 1 completed orders" in out
    assert "skipped 2 lines imported before" in out
    assert OrderItem.objects.count() == 5
    assert OrderItem.objects.filter(product__sku="SKU-A").get().quantity == 4


def test_identical_rows_in_one_file_are_two_purchases_and_stay_two(csv_file, catalogue):
    twice = HEADER + "9,2024-02-01,SKU-A,1,4.00\n" * 2
    run("import_orders", csv_file(twice))
    run("import_orders", csv_file(twice))

    assert OrderItem.objects.count() == 2


# --- bad input ----------------------------------------------------------------------------


BAD = (
    HEADER
    + "1,2024-01-05,SKU-A,2,4.00\n"
    + "2,2024-13-01,SKU-A,2,4.00\n"
    + "3,2024-01-05,SKU-A,two,4.00\n"
    + "4,2024-01-05,SKU-A,0,4.00\n"
    + "5,2024-01-05,SKU-A,1,abc\n"
    + "6,2024-01-05,,1,1.00\n"
    + "7,2024-01-05,SKU-A\n"
    + "8,2024-01-05,SKU-A,1,-1\n"
)


def test_import_orders_reports_every_bad_row_and_writes_nothing(csv_file, catalogue):
    path = csv_file(BAD)
    with pytest.raises(CommandError, match="7 invalid row"):
        run("import_orders", path)
    assert not Order.objects.exists()

    # A process of its own, on the development database: its catalogue is not the test's.
    result = manage("import_orders", path, "--create-products")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert (
        lines[0] == f"{path}:3: date '2024-13-01' is not a date like 2024-01-31 or 2024-01-31T14:05"
    )
    assert lines[1] == f"{path}:4: quantity 'two' is not a whole number"
    assert lines[2] == f"{path}:5: quantity must be at least 1, got 0"
    assert lines[3] == f"{path}:6: unit_price 'abc' is not a number"
    assert lines[4] == f"{path}:7: sku is empty"
    assert lines[5] == f"{path}:8: expected 5 fields, got 3"
    assert lines[6] == f"{path}:9: unit_price must be a number of 0 or more, got '-1'"
    assert "nothing imported" in lines[7]


def test_import_orders_skip_invalid_imports_the_good_rows(csv_file, catalogue):
    out, err = run("import_orders", csv_file(BAD), "--skip-invalid")

    assert "Imported 1 lines as 1 completed orders" in out
    assert "skipped 7 invalid rows" in out
    assert len(err.strip().splitlines()) == 7
    assert OrderItem.objects.get().quantity == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1,2024-01-05,SKU-A,2,4.00\n", "the header lacks"),
        ("customer_id,date,sku,quantity\n1,2024-01-05,SKU-A,2\n", "lacks unit_price"),
        ("", "the file is empty"),
    ],
)
def test_import_orders_refuses_a_file_without_the_header(csv_file, content, message):
    with pytest.raises(CommandError, match=message):
        run("import_orders", csv_file(content))
    assert not Order.objects.exists()


def test_import_orders_missing_file_is_one_line_and_non_zero(tmp_path):
    result = manage("import_orders", str(tmp_path / "nope.csv"))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "cannot read" in result.stderr


# --- issue 19 §3: rows that crashed the import, and problems the first run did not report ---
CRASHERS = (
    HEADER
    + "1,0001-01-01T00:00:00+23:59,SKU-A,1,1.00\n"  # the offset, and before year 1 in UTC
    + "1,0001-01-01T00:00:00+15:00,SKU-A,1,1.00\n"  # before year 1 once in UTC
    + "2,2024-03-01T10:00:00+20:00,SKU-A,1,1.00\n"  # an offset PostgreSQL cannot store
    + "3,2024-03-01,SKU-\x00A,1,1.00\n"  # NUL: PostgreSQL refuses it in text
    + "4,2024-03-01,SKU-A,2147483647,9999999999.99\n"  # the line total overflows the order's
    + "5,2024-03-01,SKU-A,1,1.00\n"
)


def test_rows_that_crashed_the_import_are_invalid_rows_with_their_line(csv_file, catalogue):
    path = csv_file(CRASHERS)
    err = StringIO()
    with pytest.raises(CommandError, match="5 invalid row"):
        call_command("import_orders", path, stdout=StringIO(), stderr=err)
    lines = err.getvalue().strip().splitlines()
    assert [line.split(":")[1] for line in lines] == ["2", "3", "4", "5", "6"]
    assert "offset" in lines[0]
    assert "out of range" in lines[1]
    assert "offset" in lines[2]
    assert "control character" in lines[3]
    assert "total" in lines[4]
    assert not Order.objects.exists()


def test_skip_invalid_skips_the_rows_that_crashed(csv_file, catalogue):
    out, err = run("import_orders", csv_file(CRASHERS), "--skip-invalid")
    assert "Imported 1 lines as 1 completed orders" in out
    assert len(err.strip().splitlines()) == 5
    assert Order.objects.get().total_amount == Decimal("1.00")


def test_the_first_run_reports_unknown_skus_as_rows_skip_invalid_will_skip(csv_file, catalogue):
    text = HEADER + "1,2024-03-01,SKU-A,1,1.00\n" + "2,2024-03-01,SKU-NOPE,1,1.00\n"
    path = csv_file(text)
    err = StringIO()
    with pytest.raises(CommandError, match="1 invalid row"):
        call_command("import_orders", path, stdout=StringIO(), stderr=err)
    assert f"{path}:3: sku 'SKU-NOPE' is not in the catalogue" in err.getvalue()
    out, _ = run("import_orders", path, "--skip-invalid")
    assert "Imported 1 lines as 1 completed orders" in out
    assert "skipped 1 invalid rows" in out
