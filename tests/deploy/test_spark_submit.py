"""The spark-submit recipes (deploy/spark-submit/README.md) are what `lakehouse bundle submit`
renders: exact YARN and Kubernetes command lines, checked against the page."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lakehouse.cli import app
from lakehouse.engine import DELTA_CATALOG, DELTA_EXTENSION

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "deploy" / "spark-submit" / "README.md"
RUN_ID = "20261204T020000-demo0001"
DELTA = f"io.delta:delta-spark_2.13:{version('delta-spark')}"
COMMON_CONF = [
    "--conf", f"spark.sql.extensions={DELTA_EXTENSION}",
    "--conf", f"spark.sql.catalog.spark_catalog={DELTA_CATALOG}",
]  # fmt: skip


def submit(*args: str) -> list[list[str]]:
    """`lakehouse bundle submit ... --dry-run` on the demo bundle: the printed lines, split."""
    result = CliRunner().invoke(app, ["bundle", "submit", *args, "--project-dir", str(ROOT)])
    assert result.exit_code == 0, result.output
    return [shlex.split(line) for line in result.stdout.splitlines()]


def entry_args(data_root: str) -> list[str]:
    return [
        "--target", "cluster", "--project-dir", "/opt/lakehouse", "--job", "demo",
        "--run-id", RUN_ID, "--task-key", "build_gold", "--var", f"data_root={data_root}",
    ]  # fmt: skip


def test_yarn_cluster_mode_line() -> None:
    (line,) = submit(
        "demo", "--target", "cluster", "--task", "build_gold", "--dry-run", "--run-id", RUN_ID,
        "--master", "yarn", "--deploy-mode", "cluster", "--cluster-project-dir", "/opt/lakehouse",
        "--py-files", "dist/lakehouse-0.1.0-py3-none-any.whl", "--var", "data_root=/mnt/lakehouse",
        "--conf", "spark.pyspark.python=/opt/lakehouse-venv/bin/python",
        "--spark-submit", "spark-submit",
    )  # fmt: skip
    assert line == [
        "spark-submit", "--master", "yarn", "--deploy-mode", "cluster",
        "--name", "lakehouse_demo:demo:build_gold",
        "--py-files", "dist/lakehouse-0.1.0-py3-none-any.whl",
        "--packages", DELTA,
        *COMMON_CONF,
        "--conf", "spark.sql.warehouse.dir=/mnt/lakehouse/warehouse",
        "--conf", "spark.ui.showConsoleProgress=false",
        "--conf", "spark.sql.parquet.outputTimestampType=TIMESTAMP_MICROS",
        "--conf", "spark.sql.shuffle.partitions=8",
        "--conf", "spark.pyspark.python=/opt/lakehouse-venv/bin/python",
        "local:///opt/lakehouse/jobs/build_gold.py",
        *entry_args("/mnt/lakehouse"),
    ]  # fmt: skip


def test_kubernetes_cluster_mode_line() -> None:
    volume = "spark.kubernetes.{}.volumes.persistentVolumeClaim.data.{}"
    k8s_conf = [
        "spark.kubernetes.namespace=lakehouse",
        "spark.kubernetes.container.image=lakehouse-spark:0.1.0",
        "spark.kubernetes.authenticate.driver.serviceAccountName=lakehouse-spark",
        f"{volume.format('driver', 'options.claimName')}=lakehouse-data",
        f"{volume.format('driver', 'mount.path')}=/data",
        f"{volume.format('executor', 'options.claimName')}=lakehouse-data",
        f"{volume.format('executor', 'mount.path')}=/data",
        "spark.jars.ivy=/tmp/.ivy2",
    ]
    (line,) = submit(
        "demo", "--target", "cluster", "--task", "build_gold", "--dry-run", "--run-id", RUN_ID,
        "--master", "k8s://https://kubernetes.example.com:6443", "--deploy-mode", "cluster",
        "--cluster-project-dir", "/opt/lakehouse", "--var", "data_root=/data",
        *[arg for conf in k8s_conf for arg in ("--conf", conf)],
        "--spark-submit", "spark-submit",
    )  # fmt: skip
    assert line == [
        "spark-submit", "--master", "k8s://https://kubernetes.example.com:6443",
        "--deploy-mode", "cluster", "--name", "lakehouse_demo:demo:build_gold",
        "--packages", DELTA,
        *COMMON_CONF,
        "--conf", "spark.sql.warehouse.dir=/data/warehouse",
        "--conf", "spark.ui.showConsoleProgress=false",
        "--conf", "spark.sql.parquet.outputTimestampType=TIMESTAMP_MICROS",
        "--conf", "spark.sql.shuffle.partitions=8",
        *[arg for conf in k8s_conf for arg in ("--conf", conf)],
        "local:///opt/lakehouse/jobs/build_gold.py",
        *entry_args("/data"),
    ]  # fmt: skip


def readme_recipes() -> list[tuple[list[str], list[str]]]:
    """(the arguments of `lakehouse bundle submit`, the spark-submit line it prints) of each
    README recipe."""
    text = README.read_text().replace("\\\n", " ")  # shell line continuations
    blocks = re.findall(r"```(bash|text)\n(.*?)```", text, re.S)
    pairs = []
    for (kind, command), (next_kind, printed) in itertools.pairwise(blocks):
        if kind == "bash" and command.startswith("lakehouse bundle submit") and next_kind == "text":
            pairs.append((shlex.split(command)[3:], shlex.split(printed)))
    return pairs


def test_the_readme_shows_what_the_commands_print() -> None:
    recipes = readme_recipes()
    assert [dict(itertools.pairwise(cmd))["--master"] for cmd, _ in recipes] == [
        "yarn",
        "k8s://https://kubernetes.example.com:6443",
    ]
    for command, printed in recipes:
        assert submit(*command) == [printed]


def test_every_task_in_dependency_order_on_this_machine() -> None:
    """Without --task: one line per task; a local master keeps this interpreter."""
    lines = submit("demo", "--target", "cluster", "--dry-run", "--run-id", RUN_ID)
    assert [line[line.index("--task-key") + 1] for line in lines] == [
        "land_demo_files", "ingest_bronze", "refine_silver", "build_gold",
        "train_model", "score_batch", "monitor_model",
    ]  # fmt: skip
    first = lines[0]
    assert first[0].endswith("/pyspark/bin/spark-submit")
    assert f"spark.pyspark.python={sys.executable}" in first
    assert str(ROOT / "jobs" / "land_demo_files.py") in first
    assert first[first.index("--project-dir") + 1] == str(ROOT)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "local"], "target 'local' has engine 'sail'"),
        (["--target", "cluster", "--conf", "novalue"], "--conf: expected KEY=VALUE"),
        (["--target", "cluster", "--task", "nope"], "no task 'nope'"),
    ],
)
def test_bad_requests_fail_with_one_line(args: list[str], message: str) -> None:
    done = lakehouse_submit(ROOT, "demo", "--dry-run", *args)
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line, line


def test_without_dry_run_it_runs_the_tasks_and_stops_at_a_failure(tmp_path: Path) -> None:
    """A real spark-submit on local[1] runs a plain PySpark task; a spark-submit that fails
    (here `false`) stops the command: exit 1, one line naming the task, nothing after it."""
    from tests.bundle.test_submit import write_project

    write_project(
        tmp_path, "      kind: spark\n      master: 'local[1]'\n      delta: {packages: []}\n"
    )
    (tmp_path / "data").mkdir()
    done = lakehouse_submit(tmp_path, "cluster_job", "-t", "cluster", "--task", "sum")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "sum.txt").read_text() == "338350 local[1] 2\n"
    assert done.stdout.startswith("$ ")  # the line it ran, then spark-submit's own output
    failed = lakehouse_submit(
        tmp_path, "cluster_job", "-t", "cluster", "--task", "sum", "--task", "entry",
        "--spark-submit", "false",
    )  # fmt: skip
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines() == [
        "error: spark-submit exited 1: plain:cluster_job:sum"
    ]
    assert failed.stdout.count("$ false") == 1  # the second task did not run


def lakehouse_submit(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    return subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "bundle", "submit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
