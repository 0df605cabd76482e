import json
import re
import subprocess
import sys
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from aktina.core import roles
from aktina.jobs.models import JobRun
from ml.jobs import RefreshMLPredictions
from ml.models import PredictionRun
from orders.models import Order, OrderItem, Product
from tests.ml.helpers import seed_history

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
HEADER = "customer_id,date,sku,quantity,unit_price\n"


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def manage(*args) -> subprocess.CompletedProcess:
    """The command as an operator runs it, for exit codes and one-line errors."""
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True
    )


# --- refresh_ml ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_refresh_ml_dispatches_the_job_and_prints_its_id():
    out, _ = run("refresh_ml", "--only", "forecasts", "--freq", "M", "--horizon", "6")

    job_run = JobRun.objects.get()
    assert job_run.job_name == RefreshMLPredictions.job_name
    assert f"job run #{job_run.pk}" in out
    assert not PredictionRun.objects.exists()


@pytest.mark.django_db
def test_refresh_ml_sync_prints_a_summary_table_without_a_progress_bar(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    seed_history()

    out, err = run("refresh_ml", "--sync", "--freq", "M", "--horizon", "3")

    run_ = PredictionRun.objects.get()
    assert run_.status == PredictionRun.Status.SUCCEEDED
    assert f"ML run #{run_.pk} succeeded" in out
    for name, size in run_.metrics["segments"].items():
        assert re.search(rf"^\s+{re.escape(name)}\s+{size:,}\s", out, re.MULTILINE)
    for model in run_.metrics["models"]:
        assert model in out
    assert "geometric mean ratio" in out
    # Not a terminal: no progress bar anywhere.
    assert "ML refresh" not in err
    assert "%|" not in err


@pytest.mark.parametrize(
    "args",
    [("--freq", "Q"), ("--horizon", "0"), ("--horizon", "x"), ("--only", "everything")],
)
def test_refresh_ml_bad_arguments_are_one_line_and_exit_2(args):
    result = manage("refresh_ml", *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error:")


# --- import_orders ------------------------------------------------------------------------


@pytest.fixture
def csv_file(tmp_path):
    def write(text: str, name: str = "orders.csv") -> str:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


GOOD = (
    HEADER
    + "42,2024-03-01,SKU-NEW,2,10.50\n"
    + "42,2024-03-01T16:30:00,SKU-NEW,1,10.50\n"
    + "42,2024-03-02,SKU-OTHER,5,3\n"
    + "7,2024-03-01,SKU-NEW,1,11.00\n"
)


@pytest.mark.django_db
def test_import_orders_groups_lines_per_customer_and_day(csv_file):
    out, err = run("import_orders", csv_file(GOOD))

    assert err == ""
    assert "Imported 4 lines as 3 completed orders (2 new customers, 2 new products)" in out
    customer = get_user_model().objects.get(username="customer-42")
    assert not customer.has_usable_password()
    assert customer.groups.filter(name=roles.CUSTOMER).exists()
    orders = Order.objects.filter(customer=customer).order_by("created_at")
    assert [o.items.count() for o in orders] == [2, 1]
    first = orders[0]
    assert first.status == Order.Status.COMPLETED
    assert first.total_amount == Decimal("31.50")
    assert first.reference.startswith("IMP-")
    assert Product.objects.get(sku="SKU-NEW").unit_price == Decimal("10.50")
    assert OrderItem.objects.count() == 4


@pytest.mark.django_db
def test_import_orders_reuses_existing_customers_and_products(csv_file, make_user):
    make_user(roles.CUSTOMER, username="customer-42")
    Product.objects.create(sku="SKU-NEW", name="Known", unit_price=Decimal("9.99"))

    out, _ = run("import_orders", csv_file(GOOD))

    assert "(1 new customers, 1 new products)" in out
    assert Product.objects.get(sku="SKU-NEW").name == "Known"


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


@pytest.mark.django_db
def test_import_orders_reports_every_bad_row_and_writes_nothing(csv_file):
    path = csv_file(BAD)
    with pytest.raises(CommandError, match="7 invalid row"):
        run("import_orders", path)
    assert not Order.objects.exists()
    assert not Product.objects.exists()

    result = manage("import_orders", path)
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


@pytest.mark.django_db
def test_import_orders_skip_invalid_imports_the_good_rows(csv_file):
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
    assert "No such file" in result.stderr


# --- evaluate_forecasts -------------------------------------------------------------------


def test_evaluate_forecasts_on_real_monthly_series():
    """Three real monthly series shipped in statsmodels (electrical equipment orders, CO2,
    El Nino sea temperature), 20 years each: see tests/ml/fixtures/README.md."""
    out, _ = run(
        "evaluate_forecasts",
        "--csv",
        str(FIXTURES / "real_monthly.csv"),
        "--freq",
        "M",
        "--horizon",
        "12",
    )

    lines = [json.loads(line) for line in out.strip().splitlines()]
    series, summary = lines[:-1], lines[-1]["summary"]
    assert [s["sku"] for s in series] == ["co2", "elec_equip", "elnino_sst"]
    for row in series:
        assert set(row) == {
            "sku", "model", "mae", "wape", "mase", "naive_mae", "naive_wape", "naive_mase",
            "ratio",
        }  # fmt: skip
        assert row["ratio"] == pytest.approx(row["mae"] / row["naive_mae"])
        assert row["ratio"] <= 1.0
    assert summary["series"] == summary["scored"] == 3
    assert summary["worse"] == 0
    assert summary["geometric_mean_ratio"] <= 0.85


def test_evaluate_forecasts_rejects_a_file_without_the_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("day,item,qty\n2024-01-01,a,1\n")
    with pytest.raises(CommandError, match="lacks column"):
        run("evaluate_forecasts", "--csv", str(path))
    result = manage("evaluate_forecasts", "--csv", str(tmp_path / "missing.csv"))
    assert result.returncode == 1
    assert "no such file" in result.stderr
