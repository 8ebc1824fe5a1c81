"""The demo job end to end through the CLI, twice: exact counts per layer, idempotent re-run."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession

from lakehouse.config import load_project
from lakehouse.engine import EngineSession
from lakehouse.io.delta import DeltaStore
from lakehouse.pipelines.ml.train import model_input
from tests.support import session_engine

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")

# The generator's 1,000 customers and 8,666 orders plus its deliberately bad rows:
# bronze.customers: 1,000 + 1 ragged CSV row; bronze.orders: 8,666 + a malformed line, an
# amount "n/a", an order without id, a negative amount (dropped by the amount_in_range rule)
# and a later correction of an existing order. Gold: 30 weekly snapshots per customer from
# its signup on; one prediction per customer.
EXPECTED_ROWS = {
    "lakehouse.bronze.customers": 1001,
    "lakehouse.bronze.orders": 8671,
    "lakehouse.silver.customers": 1000,
    "lakehouse.silver.customers_quarantine": 1,
    "lakehouse.silver.orders": 8666,
    "lakehouse.silver.orders_quarantine": 4,
    "lakehouse.gold.customer_features": 29522,
    "lakehouse.gold.daily_sales": 6819,
    "lakehouse.gold.churn_predictions": 1000,
    "lakehouse.meta.processed_files": 5,
    # 10 rotating batches of 50 purchase events from the sample data API
    "lakehouse.bronze.events": 500,
    "lakehouse.silver.events": 500,
    "lakehouse.silver.events_quarantine": 0,
    "lakehouse.meta.http_responses": 10,
}
# sha256 of each Gold table's rows (sorted, doubles rounded to 6 places; the predictions without
# their run columns): the same in local mode and in Sail's local-cluster mode (make test-cluster).
GOLD_DIGESTS = {
    "lakehouse.gold.customer_features": "dc7e3bfc4348f6104653fe3740ba74054c38f086fad3f6af75aabad29e54344a",
    "lakehouse.gold.daily_sales": "705559ed9c4f251a9bd6209ac1242cf14231f16ad1699cd08851541c23000e0a",
    "lakehouse.gold.churn_predictions": "148a11291b57ee037902448185b216a57447fc58da924b8e78e79e26a984d548",
}
RUN_COLUMNS = {"scored_at", "run_id", "model_version", "model_name"}
# A replay with no new data: the SQL-built Gold table (daily_sales) is left as it is, the
# Python transform's table is rebuilt (its code may change without its inputs) and scored.
REBUILT_EVERY_RUN = {
    "lakehouse.gold.customer_features",
    "lakehouse.gold.churn_predictions",
}


def assert_listed_row_counts(tables_output: str) -> None:
    """`lakehouse tables` lists every demo table with its expected row count."""
    lines = {
        line.split("│")[1].strip(): line
        for line in tables_output.splitlines()
        if line.count("│") > 4
    }
    for name, rows in EXPECTED_ROWS.items():
        assert f" {rows:,} " in lines[name], lines[name]


def rows_digest(df: DataFrame) -> str:
    """sha256 of a table's rows in a fixed order, doubles rounded to 6 places."""

    def cell(value: object) -> str:
        return repr(round(value, 6)) if isinstance(value, float) else repr(value)

    columns = sorted(c for c in df.columns if c not in RUN_COLUMNS)
    lines = sorted("|".join(cell(r[c]) for c in columns) for r in df.select(*columns).collect())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(
    project_dir: Path, data_root: Path, command: str = "run", *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAKEHOUSE_", "PYSPARK_", "SPARK_CONNECT", "SPARK_REMOTE", "MLFLOW_"))
    }
    env["LAKEHOUSE_VAR_data_root"] = str(data_root)
    env["LAKEHOUSE_VAR_sample_api_port"] = str(_free_port())
    return subprocess.run(
        [
            LAKEHOUSE,
            *(["run", "demo"] if command == "run" else [command, *args]),
            "--project-dir",
            str(project_dir),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.e2e
@pytest.mark.distributed
def test_demo_job_lands_every_layer_and_registers_a_champion(
    demo_project_dir: Path, tmp_path: Path, spark: SparkSession, engine_session: EngineSession
) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    data_root = tmp_path / "data"
    first = _run(demo_project_dir, data_root)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "succeeded" in first.stdout
    # the summary names the mode the job ran in (SAIL_MODE reaches the CLI's engine)
    if engine_session.mode != "local":
        assert f"engine sail ({engine_session.mode})" in " ".join(first.stdout.split())

    project = load_project(demo_project_dir, var_overrides={"data_root": str(data_root)})
    tables = DeltaStore(spark, project, session_engine(spark))
    tables.register_all()
    assert {name: tables.row_count(name) for name in EXPECTED_ROWS} == EXPECTED_ROWS
    digests = {name: rows_digest(tables.read(name)) for name in GOLD_DIGESTS}
    assert digests == GOLD_DIGESTS
    corrupt = {
        r["_corrupt"]
        for r in tables.read("lakehouse.bronze.orders").where("_corrupt IS NOT NULL").collect()
    }
    assert corrupt == {"malformed JSON: not a JSON object"}
    corrected = [
        r["order_id"]
        for r in tables.read("lakehouse.bronze.orders")
        .where("order_id IS NOT NULL")
        .groupBy("order_id")
        .count()
        .where("count = 2")
        .collect()
    ]
    assert len(corrected) == 1
    silver_row = (
        tables.read("lakehouse.silver.orders").where(f"order_id = '{corrected[0]}'").collect()
    )
    assert [r["status"] for r in silver_row] == ["refunded"]  # the later correction won
    versions_after_first = {name: tables.version(name) for name in EXPECTED_ROWS}
    attempts = tables.read("lakehouse.meta.job_runs").collect()
    assert sorted((r["task"], r["attempt"], r["status"]) for r in attempts) == sorted(
        (task, 1, "SUCCESS")
        for task in (
            "land_demo_files",
            "ingest_bronze",
            "refine_silver",
            "build_gold",
            "train_model",
            "score_batch",
            "monitor_model",
        )
    )
    # every access of the run was checked and audited, as the job's run_as identity
    audit = tables.read("lakehouse.meta.access_audit").collect()
    assert {(r["principal"], r["allowed"], r["job"]) for r in audit} == {
        ("lakehouse-job", True, "demo")
    }
    assert {r["task"] for r in audit} >= {
        "ingest_bronze",
        "refine_silver",
        "build_gold",
        "train_model",
        "score_batch",
        "monitor_model",
    }
    assert ("SELECT", "lakehouse.silver.orders", "build_gold") in {
        (r["privilege"], r["securable"], r["task"]) for r in audit
    }

    uri = f"sqlite:///{data_root}/mlflow/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("churn_model", "champion")
    assert str(champion.version) == "1"
    champion_run = client.get_run(champion.run_id)
    # learnable signal: the champion clears 0.75 ROC AUC on the time-based holdout and a
    # linear model is not the best candidate
    assert float(champion_run.data.metrics["roc_auc"]) >= 0.75
    assert champion_run.info.run_name != "logistic_regression"

    mlflow.set_registry_uri(uri)
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/churn_model@champion")
    predictions = tables.read("lakehouse.gold.churn_predictions")
    sample = (
        tables.read("lakehouse.gold.customer_features")
        .join(
            predictions.select("customer_id", "feature_ts", "prediction"),
            ["customer_id", "feature_ts"],
        )
        .orderBy("customer_id")
        .limit(20)
        .toPandas()
    )
    features = project.models["churn"].features
    x = model_input(sample, features, ["region", "plan"])
    assert model.predict(x).tolist() == sample["prediction"].tolist()

    second = _run(demo_project_dir, data_root)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "not retrained" in second.stdout
    assert {name: tables.row_count(name) for name in EXPECTED_ROWS} == EXPECTED_ROWS
    versions_after_second = {name: tables.version(name) for name in EXPECTED_ROWS}
    # Bronze and Silver commit nothing on a replay; Gold built by a transform is rebuilt and
    # re-scored (same rows, new versions), Gold built by SQL over unchanged inputs is not.
    changed = {n for n in EXPECTED_ROWS if versions_after_second[n] != versions_after_first[n]}
    assert changed == REBUILT_EVERY_RUN
    # Every Silver run records its row accounting; the second run had no new Bronze batches,
    # so it read nothing and ran no rules.
    assert tables.row_count("lakehouse.meta.dq_results") == 7
    first_reads = {
        ("lakehouse.silver.customers", 1001, 1000, 1),
        ("lakehouse.silver.orders", 8671, 8667, 4),
        ("lakehouse.silver.events", 500, 500, 0),
    }

    def accounting() -> list[tuple[str, int, int, int]]:
        return sorted(
            (r["table"], r["rows_read"], r["rows_kept"], r["rows_quarantined"])
            for r in tables.read("lakehouse.meta.silver_runs").collect()
        )

    assert accounting() == sorted([*first_reads, *{(t, 0, 0, 0) for t, *_ in first_reads}])
    # A full refresh reads all of Bronze again and, with nothing changed, commits nothing.
    refresh = _run(demo_project_dir, data_root, "refine", "--full-refresh")
    assert refresh.returncode == 0, refresh.stdout[-3000:] + refresh.stderr[-3000:]
    assert accounting() == sorted(
        [*first_reads, *first_reads, *{(t, 0, 0, 0) for t, *_ in first_reads}]
    )
    assert {n: tables.version(n) for n in EXPECTED_ROWS} == versions_after_second
    assert tables.row_count("lakehouse.meta.dq_results") == 2 * 7
    current = tables.read("lakehouse.silver.customers").where("is_current").count()
    assert current == 1000
    # Each run's monitor_model task: 10 features x (PSI, p-value) against the latest scoring
    # run, the latest DQ pass rate of the 7 rules, 6 performance rows per scoring run so far
    # (nothing was served, so no A/B rows).
    monitoring = tables.read("lakehouse.meta.model_monitoring").toPandas()
    per_run = monitoring.groupby(["monitor_run_id", "kind"]).size().unstack()
    assert sorted(per_run.to_dict("records"), key=lambda r: r["performance"]) == [
        {"drift": 20, "quality": 7, "performance": 6},
        {"drift": 20, "quality": 7, "performance": 12},
    ]
    assert set(monitoring["model_version"]) == {"1"}
    # nothing drifted: both runs compare the scored snapshot with the same snapshot at the
    # champion's training versions (drift.reference: auto -> scoring)
    assert monitoring[monitoring["alert"]]["kind"].tolist() == []
    assert [str(v.version) for v in client.search_model_versions("name = 'churn_model'")] == ["1"]

    listing = _run(demo_project_dir, data_root, command="tables")
    assert listing.returncode == 0, listing.stderr
    assert_listed_row_counts(listing.stdout)

    report = _run(demo_project_dir, data_root, "quality", "orders")
    assert report.returncode == 0, report.stderr
    rule_lines = {
        line.split("│")[1].strip(): line
        for line in report.stdout.splitlines()
        if line.count("│") > 5
    }
    assert set(rule_lines) >= {
        "amount_in_range",
        "quantity_positive",
        "status_known",
        "customer_id_format",
        "has_orders",
    }
    assert "dropped" in rule_lines["amount_in_range"]
    assert "passed" in rule_lines["has_orders"]

    listed = _run(demo_project_dir, data_root, "models", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    [only] = json.loads(listed.stdout)
    assert (only["name"], only["version"], only["aliases"]) == (
        "churn_model",
        "1",
        ["challenger", "champion"],
    )
    assert only["metrics"]["roc_auc"] >= 0.75
    unknown = _run(demo_project_dir, data_root, "train", "no_such_model")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().count("\n") == 0 and "no_such_model" in unknown.stderr
