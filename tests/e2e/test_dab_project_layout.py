"""The test bundle keeps the shape issue 20 asks for (what the end-to-end run exercises):
a default_python-style layout, every Databricks-only key the loader must accept, each
expectation kind and both AUTO CDC forms. Pure file checks, no Spark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import yaml

from tests.e2e.dab_expected import DATASETS, TABLES

PROJECT = Path(__file__).resolve().parents[1] / "data" / "dab_project"
TRANSFORMATIONS = PROJECT / "src" / "coffee_shop_etl" / "transformations"


def _yaml(relative: str) -> dict[str, Any]:
    data = yaml.safe_load((PROJECT / relative).read_text())
    assert isinstance(data, dict)
    return data


def test_bundle_has_variables_targets_and_permissions() -> None:
    bundle = _yaml("databricks.yml")
    assert bundle["bundle"]["name"] == "coffee_shop"
    assert bundle["include"] == ["resources/*.yml"]
    assert {k: v["default"] for k, v in bundle["variables"].items()} == {
        "catalog": "main",
        "schema": "coffee_shop",
        "landing_path": "/Volumes/main/coffee_shop/landing",
        "top_n": "2",
    }
    dev, prod = bundle["targets"]["dev"], bundle["targets"]["prod"]
    assert (dev["mode"], dev["default"], prod["mode"]) == ("development", True, "production")
    assert {"host", "root_path"} <= set(prod["workspace"])
    assert {"presets", "permissions"} <= set(prod)
    assert bundle["permissions"] == [{"group_name": "coffee-analysts", "level": "CAN_VIEW"}]


def test_job_is_notebook_then_pipeline_then_wheel_then_source_notebook() -> None:
    job = _yaml("resources/coffee_shop.job.yml")["resources"]["jobs"]["coffee_shop_job"]
    assert {"job_clusters", "environments", "tags", "email_notifications", "parameters"} <= set(job)
    assert job["trigger"] == {"periodic": {"interval": 1, "unit": "DAYS"}}
    tasks = {t["task_key"]: t for t in job["tasks"]}
    assert list(tasks) == ["land_raw_files", "refresh_pipeline", "publish_report", "check_report"]
    assert tasks["land_raw_files"]["notebook_task"]["notebook_path"] == "../src/notebook.ipynb"
    assert tasks["refresh_pipeline"]["pipeline_task"]["pipeline_id"] == (
        "${resources.pipelines.coffee_shop_etl.id}"
    )
    wheel = tasks["publish_report"]
    assert (wheel["environment_key"], wheel["python_wheel_task"]["entry_point"]) == (
        "default",
        "main",
    )
    check = tasks["check_report"]
    assert check["notebook_task"]["notebook_path"] == "../src/check_report.py"
    assert check["libraries"] == [{"whl": "../dist/*.whl"}]
    for notebook in ("notebook.ipynb", "check_report.py"):
        assert (PROJECT / "src" / notebook).is_file()
    nbformat.validate(nbformat.read(PROJECT / "src" / "notebook.ipynb", as_version=4))
    assert (
        (PROJECT / "src" / "check_report.py")
        .read_text()
        .startswith("# Databricks notebook source\n")
    )


def test_pipeline_resource_points_at_its_sources() -> None:
    pipelines = _yaml("resources/coffee_shop_etl.pipeline.yml")["resources"]["pipelines"]
    pipeline = pipelines["coffee_shop_etl"]
    assert (pipeline["catalog"], pipeline["schema"], pipeline["serverless"]) == (
        "${var.catalog}",
        "${var.schema}",
        True,
    )
    resources = PROJECT / "resources"
    assert (resources / pipeline["root_path"]).resolve() == TRANSFORMATIONS.parent
    include = pipeline["libraries"][0]["glob"]["include"]
    assert (resources / include.removesuffix("/**")).resolve() == TRANSFORMATIONS
    assert pipeline["configuration"] == {"coffee_shop.landing_path": "${var.landing_path}"}
    feeds = (TRANSFORMATIONS.parent / "utilities" / "feeds.py").read_text()
    assert "spark.conf.get('coffee_shop.landing_path')" in feeds


def test_pipeline_uses_every_expectation_kind_and_both_auto_cdc_forms() -> None:
    python = "\n".join(p.read_text() for p in sorted(TRANSFORMATIONS.glob("*.py")))
    sql = "\n".join(p.read_text() for p in sorted(TRANSFORMATIONS.glob("*.sql")))
    for decorator in (
        "@dp.expect(",
        "@dp.expect_or_drop(",
        "@dp.expect_or_fail(",
        "@dp.expect_all(",
    ):
        assert python.count(decorator) == 1, decorator
    assert "from pyspark import pipelines as dp" in python
    assert python.count('spark.readStream.format("cloudFiles")') == 3
    assert "stored_as_scd_type=2" in python
    assert sql.count("ON VIOLATION DROP ROW") == 2
    assert "AS AUTO CDC INTO products" in sql
    assert "STORED AS SCD TYPE 1" in sql


def test_every_expected_dataset_is_defined_in_its_file() -> None:
    assert set(TABLES) == {
        name for name, (kind, _, _) in DATASETS.items() if kind != "temporary_view"
    }
    for name, (_, upstream, file) in DATASETS.items():
        text = (TRANSFORMATIONS / file).read_text()
        assert name in text, (name, file)
        for source in upstream:
            assert source in text, (name, source, file)
