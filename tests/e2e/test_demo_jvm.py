"""The demo job on JVM Spark + delta-spark lands the same rows and takes the same model
decision as on the embedded engine.

Both runs go through the CLI (`lakehouse run` and `lakehouse run --engine spark`, where every
task is a spark-submit with the Delta jars) into their own data roots (the Sail run is the
session's ``demo_job_on_sail``, which the notebook tests read too); the tables are then
read with JVM Spark and compared whole, without the columns that name a run, a time, a port
or a path. Measured differences, allowed here and recorded in ARCHITECTURE.md: double sums
differ in the last bits (summation order), and ``to_json`` renders timestamps and decimals
differently (``.000000Z``/``-5.0`` on Sail, ``.000Z``/``-5.00`` on JVM Spark).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from lakehouse.config import load_project
from lakehouse.io.delta import DeltaStore
from tests.conftest import DemoJobRun

pytestmark = [pytest.mark.jvm, pytest.mark.e2e]

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
COMPARED = [
    "lakehouse.bronze.customers",
    "lakehouse.bronze.orders",
    "lakehouse.bronze.events",
    "lakehouse.silver.customers",
    "lakehouse.silver.customers_quarantine",
    "lakehouse.silver.orders",
    "lakehouse.silver.orders_quarantine",
    "lakehouse.silver.events",
    "lakehouse.gold.customer_features",
    "lakehouse.gold.daily_sales",
    "lakehouse.gold.churn_predictions",
    "lakehouse.meta.dq_results",
]
# columns naming the run, the clock, the loopback port or the data root
RUN_SPECIFIC = {
    "_batch_id",
    "_ingested_at",
    "_run_id",
    "_request",
    "_fetched_at",
    "_quarantined_at",
    "_row_hash",
    "scored_at",
    "run_id",
    "evaluated_at",
}
TIMESTAMP_TEXT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_demo(project_dir: Path, data_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`lakehouse run demo ARGS` with its own data root and sample API port."""
    keep = ("LAKEHOUSE_DELTA_JARS",)
    env = {
        k: v
        for k, v in os.environ.items()
        if k in keep
        or not k.startswith(("LAKEHOUSE_", "PYSPARK_", "SPARK_CONNECT", "SPARK_REMOTE", "MLFLOW_"))
    }
    env["LAKEHOUSE_VAR_data_root"] = str(data_root)
    env["LAKEHOUSE_VAR_sample_api_port"] = str(_free_port())
    return subprocess.run(
        [LAKEHOUSE, "run", "demo", "--project-dir", str(project_dir), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )


def comparable(value: Any) -> Any:
    """A value with engine-specific renderings made equal: doubles to 9 significant digits,
    JSON payloads parsed with their run-specific keys dropped, paths to file names."""
    if isinstance(value, float):
        return float(f"{value:.9g}") if math.isfinite(value) else value
    if isinstance(value, str) and value.startswith("{"):
        try:
            payload = json.loads(value, parse_float=decimal.Decimal)
        except json.JSONDecodeError:  # a malformed line kept raw, as it came
            return value
        return sorted(
            (k, comparable(_json_value(v)))
            for k, v in payload.items()
            if k not in RUN_SPECIFIC and k != "_source_file"
        )
    if isinstance(value, str) and value.startswith("/"):
        return Path(value).name
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, str) and TIMESTAMP_TEXT.match(value):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, int | decimal.Decimal) and not isinstance(value, bool):
        return decimal.Decimal(value).normalize()
    return value


def table_rows(tables: DeltaStore, name: str) -> list[tuple[Any, ...]]:
    frame = tables.read(name)
    kept = [c for c in frame.columns if c not in RUN_SPECIFIC]
    out = [tuple(comparable(v) for v in r) for r in frame.select(*kept).collect()]
    return sorted(out, key=repr)


def models(project_dir: Path, data_root: Path) -> list[dict[str, Any]]:
    listed = subprocess.run(
        [LAKEHOUSE, "models", "-o", "json", "--project-dir", str(project_dir)],
        env={**os.environ, "LAKEHOUSE_VAR_data_root": str(data_root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listed.returncode == 0, listed.stderr
    out = json.loads(listed.stdout)
    for model in out:
        model["metrics"] = {
            k: round(v, 9) for k, v in model["metrics"].items() if not k.endswith("_seconds")
        }
        model.pop("run_id", None)
        model.pop("created", None)
    return list(out)


def test_the_demo_job_on_jvm_spark_equals_the_embedded_engine(
    demo_project_dir: Path, tmp_path: Path, spark: SparkSession, demo_job_on_sail: DemoJobRun
) -> None:
    sail_root, jvm_root = demo_job_on_sail.data_root, tmp_path / "jvm"
    on_jvm = run_demo(demo_project_dir, jvm_root, "--engine", "spark")
    assert on_jvm.returncode == 0, on_jvm.stdout[-3000:] + on_jvm.stderr[-3000:]
    assert "engine spark" in on_jvm.stdout
    submitted = [line for line in on_jvm.stdout.splitlines() if line.startswith("$ ")]
    assert len(submitted) == 7 and all("spark.sql.extensions=io.delta" in s for s in submitted)

    def adapter(root: Path) -> DeltaStore:
        project = load_project(demo_project_dir, var_overrides={"data_root": str(root)})
        return DeltaStore(spark, project, "spark")

    sail_tables, jvm_tables = adapter(sail_root), adapter(jvm_root)
    for name in COMPARED:
        assert table_rows(jvm_tables, name) == table_rows(sail_tables, name), name
    engines = {r["engine"] for r in jvm_tables.read("lakehouse.meta.job_runs").collect()}
    assert engines == {"spark"}
    on_jvm_models, on_sail_models = (
        models(demo_project_dir, jvm_root),
        models(demo_project_dir, sail_root),
    )
    assert on_jvm_models == on_sail_models
    assert [m["aliases"] for m in on_jvm_models] == [["challenger", "champion"]]
