"""``lakehouse pipeline``: a spark-pipelines spec file run from the command line, dry-run
errors as one line and a non-zero exit, ``pipeline list``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse.config.project import Project
from lakehouse.pipelines.declarative.spec import find_spec_file, load_spec_file
from lakehouse.runtime.run import RunContext

from .conftest import write

pytestmark = pytest.mark.delta

SPEC = """
name: numbers
storage: ./state
database: sales
configuration:
  numbers.count: "5"
libraries:
  - glob:
      include: transformations/**
"""

CODE = """
from pyspark import pipelines as dp
from helpers import evens


@dp.materialized_view(comment="five numbers")
def numbers():
    return spark.range(int(spark.conf.get("numbers.count")))


@dp.materialized_view
@dp.expect_or_drop("even", "id % 2 = 0")
def even_numbers():
    return evens(spark.read.table("numbers"))
"""


def lakehouse(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture()
def spec_dir(project: Project) -> Path:
    folder = project.root / "numbers"
    write(folder / "spark-pipeline.yml", SPEC)
    write(folder / "transformations" / "numbers.py", CODE)
    write(folder / "helpers.py", "def evens(df):\n    return df\n")
    return folder


def test_spec_file_is_read_like_spark_pipelines(project: Project, spec_dir: Path) -> None:
    d = load_spec_file(project, find_spec_file(spec_dir))
    assert (d.name, d.catalog, d.schema, dict(d.configuration)) == (
        "numbers",
        "lh",
        "sales",
        {"numbers.count": "5"},
    )
    assert d.files == (spec_dir / "transformations" / "numbers.py",)
    assert d.root_path == spec_dir and d.storage == spec_dir / "state"


def test_cli_runs_a_spec_and_fails_a_dry_run_in_one_line(project: Project, spec_dir: Path) -> None:
    done = lakehouse(project.root, "pipeline", "run", "--spec", str(spec_dir))
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "lh.sales." in line]
    assert [[c.strip() for c in line.split("│")[1:8]] for line in lines] == [
        ["lh.sales.numbers", "materialized_view", "COMPLETED", "5", "0", "0", "0"],
        ["lh.sales.even_numbers", "materialized_view", "COMPLETED", "3", "0", "1", "2"],
    ]
    write(
        spec_dir / "transformations" / "broken.py",
        CODE.replace('"numbers"', '"nope"')
        .replace("def numbers", "def numbers2")
        .replace("def even_numbers", "def broken"),
    )
    failed = lakehouse(project.root, "pipeline", "dry-run", "--spec", str(spec_dir))
    assert failed.returncode == 1
    broken = spec_dir / "transformations" / "broken.py"
    assert failed.stderr.strip().replace("\n", "") == (
        "error: lh.sales.broken reads nope, which is neither a dataset of the pipeline nor an "
        f"existing table ({broken}:10)"
    )
    listed = lakehouse(project.root, "pipeline", "list")
    assert listed.returncode == 0 and "pipelines · target local" in listed.stdout


def test_run_pipeline_by_bundle_key(
    run: RunContext, project: Project, spec_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run_pipeline(run, key)``: the bundle's ``resources.pipelines.<key>`` (dab-config
    adds the field to the bundle model; here it is given directly)."""
    from lakehouse.config.declarative import PipelineResource
    from lakehouse.pipelines.declarative import spec as spec_module
    from lakehouse.pipelines.declarative.runner import PipelineUpdateError, run_pipeline

    resource = PipelineResource.model_validate(
        {
            "name": "numbers_pipeline",
            "schema": "sales",
            "root_path": str(spec_dir),
            "configuration": {"numbers.count": "4"},
            "libraries": [{"glob": {"include": str(spec_dir / "transformations" / "**")}}],
        }
    )
    monkeypatch.setattr(spec_module, "bundle_pipelines", lambda project: {"numbers": resource})
    update = run_pipeline(run, "numbers_pipeline").raise_on_failure()
    assert [(r.rows_written, r.dropped) for r in update.datasets.values()] == [(4, 0), (2, 2)]
    with pytest.raises(PipelineUpdateError) as failed:
        run_pipeline(run, "numbers", refresh=["nope"]).raise_on_failure()
    assert str(failed.value) == (
        "pipeline numbers_pipeline: --refresh lh.sales.nope: not a dataset of the pipeline "
        "(datasets: lh.sales.even_numbers, lh.sales.numbers)"
    )


def test_a_spec_outside_any_bundle_runs_in_an_implicit_project(tmp_path: Path) -> None:
    folder = tmp_path / "standalone"
    write(folder / "spark-pipeline.yml", SPEC)
    write(folder / "transformations" / "numbers.py", CODE)
    write(folder / "helpers.py", "def evens(df):\n    return df\n")
    done = lakehouse(folder, "pipeline", "run", "--spec", ".")
    assert done.returncode == 0, done.stderr
    assert "spark_catalog.sales.even_numbers" in done.stdout
    assert (folder / "state" / "tables" / "sales" / "even_numbers" / "_delta_log").is_dir()
    assert (folder / "state" / "lakehouse-project" / "bundle.yml").is_file()


def test_bundle_resource_pipeline(tmp_path: Path) -> None:
    """A pipeline declared in the bundle (``resources.pipelines``: helper dab-config's model)."""
    write(
        tmp_path / "databricks.yml",
        """
        bundle: {name: sdp}
        include: [conf/*.yml]
        variables:
          data_root: {default: ./data}
        targets:
          local: {default: true}
        resources:
          pipelines:
            numbers:
              name: numbers_pipeline
              catalog: lh
              schema: sales
              root_path: ./src
              configuration: {numbers.count: "6"}
              libraries:
                - glob: {include: ./src/transformations/**}
              serverless: true
        """,
    )
    write(
        tmp_path / "conf" / "catalog.yml",
        "catalog:\n  name: lh\n  storage_root: ${var.data_root}/tables\n  schemas:\n    sales: {}\n",
    )
    write(tmp_path / "src" / "transformations" / "numbers.py", CODE)
    write(tmp_path / "src" / "helpers.py", "def evens(df):\n    return df\n")
    listed = lakehouse(tmp_path, "pipeline", "list")
    assert listed.returncode == 0, listed.stderr
    assert "numbers_pipeline" in listed.stdout and "lh.sales" in listed.stdout
    done = lakehouse(tmp_path, "pipeline", "run", "numbers")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "lh.sales." in line]
    assert [[c.strip() for c in line.split("│")[1:8]] for line in lines] == [
        ["lh.sales.numbers", "materialized_view", "COMPLETED", "6", "0", "0", "0"],
        ["lh.sales.even_numbers", "materialized_view", "COMPLETED", "3", "0", "1", "3"],
    ]
