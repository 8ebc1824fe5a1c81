"""The same pipeline on this runner (embedded engine, Delta) and on Apache Spark's own
``spark-pipelines run`` (JVM, Parquet/Hive tables): equal tables."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pyspark
import pytest

from .conftest import write
from .test_cli import lakehouse

pytestmark = pytest.mark.jvm

CODE = """
from pyspark import pipelines as dp
from pyspark.sql import SparkSession, functions as F

spark = SparkSession.active()


@dp.materialized_view
def numbers():
    return spark.range(10).withColumn("k", F.col("id") % 3)


@dp.materialized_view
def by_k():
    return spark.read.table("numbers").groupBy("k").agg(F.sum("id").alias("total"))


@dp.temporary_view
def odd():
    return spark.read.table("numbers").where("id % 2 = 1")


@dp.materialized_view
def odd_by_k():
    return spark.read.table("odd").groupBy("k").count()
"""


def spec(folder: Path) -> Path:
    write(
        folder / "spark-pipeline.yml",
        f"name: parity\nstorage: file://{folder}/storage\ndatabase: default\n"
        "libraries:\n  - glob:\n      include: transformations/**\n",
    )
    write(folder / "transformations" / "numbers.py", CODE)
    return folder


def rows(files: list[Path]) -> list[tuple[object, ...]]:
    tables = [pq.read_table(f) for f in files]
    names = sorted(tables[0].column_names)
    return sorted(tuple(r[n] for n in names) for t in tables for r in t.to_pylist())


def test_equal_tables_on_apache_spark_pipelines(tmp_path: Path) -> None:
    ours, apache = spec(tmp_path / "ours"), spec(tmp_path / "apache")
    done = lakehouse(ours, "pipeline", "run", "--spec", ".")
    assert done.returncode == 0, done.stderr
    home = Path(pyspark.__file__).parent
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    runner = shutil.which("spark-pipelines", path=env["PATH"])
    assert runner is not None
    ran = subprocess.run(
        [runner, "run", "--spec", "spark-pipeline.yml"],
        cwd=apache,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    for table in ("numbers", "by_k", "odd_by_k"):
        theirs = list((apache / "spark-warehouse" / table).glob("*.parquet"))
        mine = list((ours / "storage" / "tables" / "default" / table).glob("*.parquet"))
        assert rows(mine) == rows(theirs), table
