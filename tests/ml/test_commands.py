import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from aktina.jobs.models import JobRun
from ml.jobs import RefreshMLPredictions
from ml.models import PredictionRun
from tests.commands import ROOT, manage, run
from tests.ml.helpers import seed_history

FIXTURES = Path(__file__).parent / "fixtures"

HEADER = "customer_id,date,sku,quantity,unit_price\n"


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
    assert "held-out MAE vs seasonal naive" in out
    assert "interval coverage on held-out windows" in out
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
        "--format",
        "jsonl",
    )

    lines = [json.loads(line) for line in out.strip().splitlines()]
    series, summary = lines[:-1], lines[-1]["summary"]
    assert [s["sku"] for s in series] == ["co2", "elec_equip", "elnino_sst"]
    for row in series:
        assert set(row) >= {
            "sku", "origins", "ratio", "ratio_p10", "ratio_p90", "worse_share", "mae",
            "naive_mae", "mase", "naive_mase", "coverage", "scored_points", "models",
        }  # fmt: skip
        assert row["origins"] == 12
        assert sum(row["models"].values()) == 12
    assert summary["series"] == summary["scored"] == 3
    assert summary["geometric_mean_ratio"] <= 0.85
    assert summary["ratio_p10"] < summary["geometric_mean_ratio"] < summary["ratio_p90"]
    # El Nino sea temperature is worse than seasonal naive over its 12 origins with every
    # model tried (docs/architecture.md, "ML"); the two order series are not.
    assert {s["sku"] for s in series if s["ratio"] > 1} <= {"elnino_sst"}
    assert 0.75 <= summary["coverage"] <= 0.95
    assert summary["interval_level"] == 0.8


def test_evaluate_forecasts_rejects_a_file_without_the_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("day,item,qty\n2024-01-01,a,1\n")
    with pytest.raises(CommandError, match="lacks column"):
        run("evaluate_forecasts", "--csv", str(path))
    result = manage("evaluate_forecasts", "--csv", str(tmp_path / "missing.csv"))
    assert result.returncode == 1
    assert "no such file" in result.stderr


def test_evaluate_forecasts_prints_a_table_with_unscored_series_and_a_summary(tmp_path):
    rows = ["date,sku,quantity,source"]
    for i in range(120):
        month = f"{2010 + i // 12}-{i % 12 + 1:02d}-01"
        rows.append(f"{month},wave,{100 + 20 * ((i * 7) % 12) + (i * 37) % 11},made up")
        rows.append(f"{month},flat,5,made up")
    path = tmp_path / "two.csv"
    path.write_text("\n".join(rows) + "\n")

    out, _ = run(
        "evaluate_forecasts", "--csv", str(path), "--freq", "M", "--horizon", "6",
        "--models", "seasonal_naive,exp_smoothing,theta,ensemble",
    )  # fmt: skip

    lines = out.splitlines()
    assert lines[0].split()[:4] == ["series", "span", "origins", "ratio"]
    assert re.search(r"^flat\s+2010-01\.\.2019-12\s+-\s+unscored: constant", out, re.M)
    assert re.search(r"^wave\s+2010-01\.\.2019-12\s+12\s+\d\.\d\d\s", out, re.M)
    assert "2 series, scored 1, unscored: 1" in out
    assert re.search(r"^  wave\s+made up$", out, re.M)


def test_evaluate_forecasts_with_nothing_to_score_exits_non_zero_with_one_line(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("date,sku,quantity\n2024-01-01,a,3\n")

    result = manage("evaluate_forecasts", "--csv", str(path), "--freq", "M")

    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"CommandError: nothing to score in {path}: a: too short: 1 period, needs 60 for one origin"
    ]


IMPORT_CHECK = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aktina.settings")
from django.core.management import execute_from_command_line
try:
    execute_from_command_line(["manage.py", *sys.argv[1:]])
except SystemExit as exc:
    print("exit", exc.code)
print(sorted(m for m in ("pandas", "sklearn", "statsmodels", "scipy") if m in sys.modules))
"""


@pytest.mark.parametrize(
    "args",
    [
        ("refresh_ml", "--freq", "Q"),
        ("evaluate_forecasts", "--csv", "x.csv", "--horizon", "0"),
        ("seed_demo", "--orders", "many"),
    ],
)
def test_commands_parse_arguments_before_importing_heavy_libraries(args):
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK, *args], cwd=ROOT, capture_output=True, text=True
    )

    assert result.stdout.splitlines() == ["exit 2", "[]"], result.stdout + result.stderr
    assert result.stderr.startswith("error:")


def test_the_command_default_origins_match_the_evaluation():
    from ml.forecasting import evaluation
    from ml.management.commands import evaluate_forecasts

    assert evaluate_forecasts.MAX_EVALUATION_ORIGINS == evaluation.MAX_EVALUATION_ORIGINS
    assert evaluate_forecasts.MODELS == evaluation.CANDIDATES
