"""`lakehouse init`: each template writes a project that `lakehouse run` runs at once, with
exact outcomes per layer; `--from` describes existing files; bad input is one line."""

from __future__ import annotations

import csv
import datetime
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.core.errors import LakehouseError
from lakehouse.project_init import InitError, init_project

SAMPLE = Path(__file__).parents[2] / "src/lakehouse/templates/medallion/data/landing/orders"


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKEHOUSE_", "PYSPARK_", "SPARK_CONNECT", "SPARK_REMOTE", "MLFLOW_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "lakehouse", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _rows(spark: SparkSession, project: Path, table: str) -> list[dict[str, object]]:
    """The rows of the Delta table ``schema/table`` under the project's data root."""
    path = project / "data/tables" / table
    return [r.asDict() for r in spark.read.format("delta").load(str(path)).collect()]


def _sample_orders() -> list[dict[str, str]]:
    with (SAMPLE / "orders.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _expected_daily_sales(orders: list[dict[str, str]]) -> dict[tuple[str, str], tuple[int, int]]:
    """(order_date, product) -> (orders, units) of the completed orders Silver keeps."""
    kept = [o for o in orders if int(o["quantity"]) >= 1 and o["status"] == "completed"]
    counts = Counter((o["order_date"], o["product"]) for o in kept)
    units: Counter[tuple[str, str]] = Counter()
    for o in kept:
        units[(o["order_date"], o["product"])] += int(o["quantity"])
    return {key: (counts[key], units[key]) for key in counts}


def test_minimal_template_runs_and_ingests_the_sample(tmp_path: Path, spark: SparkSession) -> None:
    project = tmp_path / "my-first-lakehouse"
    out = _ok(_cli("init", str(project)))
    assert "Created my_first_lakehouse (minimal template)" in out
    written = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    assert written == [
        ".gitignore",
        "README.md",
        "bundle.yml",
        "conf/catalog.yml",
        "conf/sources.yml",
        "data/landing/orders/orders.csv",
        "jobs/ingest_bronze.py",
    ]
    assert "lakehouse run" in (project / "README.md").read_text()
    _ok(_cli("run", "-C", str(project)))
    bronze = _rows(spark, project, "bronze/orders")
    assert len(bronze) == len(_sample_orders()) == 120
    assert {r["_source"] for r in bronze} == {"orders"}
    assert sorted(str(r["order_id"]) for r in bronze) == sorted(
        o["order_id"] for o in _sample_orders()
    )


def test_medallion_template_runs_bronze_silver_quarantine_gold(
    tmp_path: Path, spark: SparkSession
) -> None:
    project = tmp_path / "shop"
    _ok(_cli("init", str(project), "--template", "medallion"))
    _ok(_cli("run", "-C", str(project)))
    orders = _sample_orders()
    assert len(_rows(spark, project, "bronze/orders")) == 120
    silver = _rows(spark, project, "silver/orders")
    quarantine = _rows(spark, project, "silver/orders_quarantine")
    assert sorted(json.loads(str(r["_row"]))["order_id"] for r in quarantine) == sorted(
        o["order_id"] for o in orders if int(o["quantity"]) < 1
    )
    assert {tuple(r["_reasons"]) for r in quarantine} == {("quantity_positive",)}
    assert len(silver) == 117 and len(quarantine) == 3
    gold = _rows(spark, project, "gold/daily_sales")
    assert {
        (str(r["order_date"]), str(r["product"])): (r["orders"], r["units"]) for r in gold
    } == _expected_daily_sales(orders)
    assert len(gold) == 45


@pytest.mark.e2e
def test_mlops_template_trains_a_champion_and_scores(tmp_path: Path, spark: SparkSession) -> None:
    from mlflow.tracking import MlflowClient

    project = tmp_path / "churn"
    _ok(_cli("init", str(project), "--template", "mlops"))
    assert (project / "conf/models.yml").is_file()
    out = _ok(_cli("run", "-C", str(project)))
    assert "✓ monitor success" in out and "ALERT" not in out
    assert len(_rows(spark, project, "bronze/customers")) == 80
    assert len(_rows(spark, project, "silver/orders")) == 117
    assert len(_rows(spark, project, "gold/daily_sales")) == 45
    features = _rows(spark, project, "gold/customer_features")
    assert len(features) == 80
    predictions = _rows(spark, project, "gold/churn_predictions")
    assert sorted(str(r["customer_id"]) for r in predictions) == sorted(
        str(r["customer_id"]) for r in features
    )
    assert {r["model_version"] for r in predictions} == {"1"}
    uri = f"sqlite:///{project}/data/mlflow/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("churn_churn", "champion")
    assert str(champion.version) == "1"
    assert float(client.get_run(champion.run_id).data.metrics["roc_auc"]) >= 0.6
    monitoring = _rows(spark, project, "meta/model_monitoring")
    # PSI for the 6 features, KS for the 4 numeric and chi-square for the 2 categorical ones,
    # a pass rate per Silver rule, and the batch predictions judged against the labels
    assert Counter((r["kind"], r["metric"]) for r in monitoring) == {
        ("drift", "psi"): 6,
        ("drift", "ks_pvalue"): 4,
        ("drift", "chi2_pvalue"): 2,
        ("quality", "pass_rate"): 3,
        **{("performance", m): 1 for m in ("labeled_rows", "roc_auc", "accuracy")},
        **{("performance", m): 1 for m in ("precision", "recall", "f1")},
    }
    assert {(r["model_name"], r["alert"]) for r in monitoring} == {("churn_churn", False)}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_from_csv_directories_ingests_exactly_those_rows(
    tmp_path: Path, spark: SparkSession
) -> None:
    raw = tmp_path / "raw"
    _write(raw / "orders/jan.csv", "order_id,amount,day\nA1,1.5,2024-01-01\nA2,2.25,2024-01-02\n")
    _write(raw / "orders/feb.csv", "order_id,amount,day\nB1,3.0,2024-02-01\n")
    _write(
        raw / "customers/export.csv",
        "customer_id;name;joined_at\nC1;Ann;2024-01-02 10:00:00\nC2;Bo;2024-01-03 11:30:00\n"
        "C3;Cy;2024-01-04 09:15:00\n",
    )
    project = tmp_path / "from_files"
    out = _ok(_cli("init", str(project), "--from", str(raw)))
    assert "sources: customers, orders" in out
    assert not (project / "data/landing").exists()  # the sample is replaced
    sources = (project / "conf/sources.yml").read_text()
    assert 'csv: {delimiter: ";"}' in sources and f"path: {raw}/customers" in sources
    catalog = (project / "conf/catalog.yml").read_text()
    assert "columns:" not in catalog  # inferred from the files at the first run
    assert (
        f"allowed_external_paths:\n  - {raw}/customers\n  - {raw}/orders"
        in (project / "bundle.yml").read_text()
    )
    _ok(_cli("run", "-C", str(project)))
    orders = _rows(spark, project, "bronze/orders")
    assert sorted((r["order_id"], r["amount"]) for r in orders) == [
        ("A1", 1.5),
        ("A2", 2.25),
        ("B1", 3.0),
    ]
    customers = _rows(spark, project, "bronze/customers")
    assert sorted((r["customer_id"], r["name"]) for r in customers) == [
        ("C1", "Ann"),
        ("C2", "Bo"),
        ("C3", "Cy"),
    ]
    assert all(r["_corrupt"] is None and r["_rescued_data"] is None for r in orders + customers)
    assert isinstance(orders[0]["day"], datetime.date)
    assert isinstance(customers[0]["joined_at"], datetime.datetime)


def test_non_empty_directory_is_refused_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    refused = _cli("init", str(tmp_path))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"error: {tmp_path} is not empty; use --force to write into it anyway"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    _ok(_cli("init", "--force", cwd=tmp_path))  # DIR defaults to .
    assert (tmp_path / "bundle.yml").is_file() and (tmp_path / "notes.txt").read_text() == "mine"


def test_unknown_template_is_refused_with_one_line(tmp_path: Path) -> None:
    refused = _cli("init", str(tmp_path / "p"), "--template", "lakehouse")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: unknown template 'lakehouse' (expected one of: minimal, medallion, mlops)"
    )
    assert not (tmp_path / "p").exists()


def test_from_refuses_what_bronze_cannot_ingest(tmp_path: Path) -> None:
    _write(tmp_path / "raw/a.csv", "1,2,3\n4,5,6\n")
    with pytest.raises(LakehouseError, match="does not look like a header"):
        init_project(tmp_path / "p", from_path=tmp_path / "raw")
    with pytest.raises(InitError, match="--from works with --template minimal"):
        init_project(tmp_path / "p", template="medallion", from_path=tmp_path / "raw")
    assert not (tmp_path / "p").exists()
