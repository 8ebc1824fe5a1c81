"""``lakehouse bundle export databricks`` of a Databricks bundle: the export equals the
input (databricks.yml + resources/*.yml) modulo formatting, the files merged into one and
paths relative to it; a lakehouse bundle.yml keeps its Databricks-only keys."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakehouse.bundle.dab_export import (
    DabExportError,
    export_databricks_bundle,
    is_databricks_bundle,
    merged_bundle,
    root_file,
)
from lakehouse.bundle.export import airflow_notes, export_airflow, export_databricks
from lakehouse.config import load_project
from lakehouse.core.errors import ConfigError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DAB = HERE / "dab_bundle"


@pytest.fixture()
def dab_root(tmp_path: Path) -> Path:
    root = tmp_path / "dab"
    shutil.copytree(DAB, root)
    return root


def _read(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _input_merged_by_hand(root: Path) -> dict[str, Any]:
    """What the exported file must hold: the root file without ``include``, the resources
    files' contents next to it, and their paths (relative to resources/) relative to the
    root instead."""
    doc = _read(root / "databricks.yml")
    del doc["include"]
    job = _read(root / "resources" / "dab_roundtrip.job.yml")["resources"]["jobs"]
    pipeline = _read(root / "resources" / "dab_roundtrip.pipeline.yml")["resources"]["pipelines"]
    doc["resources"] = {"jobs": copy.deepcopy(job), "pipelines": copy.deepcopy(pipeline)}
    j = doc["resources"]["jobs"]["dab_roundtrip_job"]
    j["environments"][0]["spec"]["dependencies"] = ["./dist/*.whl", "pandas>=2"]
    tasks = {t["task_key"]: t for t in j["tasks"]}
    tasks["notebook_task"]["notebook_task"]["notebook_path"] = "./src/notebook.ipynb"
    tasks["plain_script"]["spark_python_task"]["python_file"] = "./src/plain_job.py"
    tasks["plain_script"]["libraries"][0]["whl"] = "./dist/*.whl"
    p = doc["resources"]["pipelines"]["dab_roundtrip_pipeline"]
    p["root_path"] = "./src/pipeline"
    p["libraries"] = [
        {"glob": {"include": "./src/pipeline/transformations/**"}},
        {"file": {"path": "./src/pipeline/extra.sql"}},
        {"notebook": {"path": "./src/pipeline/dlt_notebook.py"}},
    ]
    return doc


def test_a_databricks_bundle_is_exported_as_written(dab_root: Path) -> None:
    assert root_file(dab_root).name == "databricks.yml" and is_databricks_bundle(dab_root)
    doc, notes = export_databricks_bundle(dab_root)
    assert notes == []
    assert doc == _input_merged_by_hand(dab_root)
    job = doc["resources"]["jobs"]["dab_roundtrip_job"]
    # the keys that mean nothing locally, and ${...} references, are kept as written
    assert job["job_clusters"][0]["new_cluster"]["node_type_id"] == "i3.xlarge"
    assert job["tags"] == {"team": "data", "target": "${bundle.target}"}
    assert job["parameters"][0] == {"name": "catalog", "default": "${var.catalog}"}
    assert job["tasks"][1]["pipeline_task"]["pipeline_id"] == (
        "${resources.pipelines.dab_roundtrip_pipeline.id}"
    )
    # every path still names the same file
    for path in (
        job["tasks"][0]["notebook_task"]["notebook_path"],
        job["tasks"][3]["spark_python_task"]["python_file"],
        doc["resources"]["pipelines"]["dab_roundtrip_pipeline"]["libraries"][1]["file"]["path"],
    ):
        assert (dab_root / path).is_file(), path


def test_the_exported_file_exports_to_itself(dab_root: Path, tmp_path: Path) -> None:
    """The round trip: the exported file, as a bundle of its own, exports the same."""
    doc, _ = export_databricks_bundle(dab_root)
    again = tmp_path / "again"
    shutil.copytree(dab_root / "src", again / "src")
    (again / "databricks.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    assert export_databricks_bundle(again)[0] == doc


def test_exported_elsewhere_the_paths_lead_back(dab_root: Path) -> None:
    dist = dab_root / "dist"
    doc, _ = export_databricks_bundle(dab_root, bundle_dir=dist)
    assert doc["sync"] == {"exclude": ["data/**"], "paths": [".."]}
    assert doc["artifacts"]["python_artifact"]["path"] == ".."
    job = doc["resources"]["jobs"]["dab_roundtrip_job"]
    assert job["tasks"][0]["notebook_task"]["notebook_path"] == "../src/notebook.ipynb"
    assert job["environments"][0]["spec"]["dependencies"] == ["./*.whl", "pandas>=2"]  # dist/
    pipeline = doc["resources"]["pipelines"]["dab_roundtrip_pipeline"]
    assert pipeline["libraries"][0] == {"glob": {"include": "../src/pipeline/transformations/**"}}
    assert pipeline["configuration"] == {"bundle.sourcePath": "${workspace.file_path}/src"}
    for path in (
        job["tasks"][0]["notebook_task"]["notebook_path"],
        pipeline["libraries"][2]["notebook"]["path"],
    ):
        assert (dist / path).resolve().is_file(), path
    # the rest is as written
    stripped = {k: v for k, v in doc.items() if k not in ("sync", "artifacts", "resources")}
    expected = _input_merged_by_hand(dab_root)
    assert stripped == {
        k: v for k, v in expected.items() if k not in ("sync", "artifacts", "resources")
    }


def test_only_named_jobs_and_export_time_variables(dab_root: Path) -> None:
    doc, _ = export_databricks_bundle(
        dab_root, jobs=["dab_roundtrip_job"], target="dev", var_overrides={"schema": "me"}
    )
    assert doc["targets"]["dev"]["variables"] == {"schema": "me"}
    assert doc["targets"]["prod"]["variables"] == {"schema": "prod_schema"}
    assert list(doc["resources"]["pipelines"]) == ["dab_roundtrip_pipeline"]
    with pytest.raises(ConfigError, match=r"resources\.jobs\.nope: no such job"):
        export_databricks_bundle(dab_root, jobs=["nope"])


def test_lakehouse_only_keys_are_taken_out_and_named(dab_root: Path) -> None:
    path = dab_root / "databricks.yml"
    doc = _read(path)
    doc["targets"]["dev"]["engine"] = {"kind": "sail"}
    doc["allowed_external_paths"] = ["/srv/data"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    job_file = dab_root / "resources" / "dab_roundtrip.job.yml"
    jobs = _read(job_file)
    job = jobs["resources"]["jobs"]["dab_roundtrip_job"]
    job["max_parallel_tasks"] = 2
    job["webhook_notifications"] = {
        "on_start": [{"url": "https://hooks.example.com/x"}],
        "on_failure": [{"id": "dest-1"}, {"url": "https://hooks.example.com/y"}],
    }
    job["tasks"][0]["run_as"] = {"user_name": "bob"}
    job_file.write_text(yaml.safe_dump(jobs, sort_keys=False))
    out, notes = export_databricks_bundle(dab_root)
    assert "engine" not in out["targets"]["dev"] and "allowed_external_paths" not in out
    exported = out["resources"]["jobs"]["dab_roundtrip_job"]
    assert exported["webhook_notifications"] == {"on_failure": [{"id": "dest-1"}]}
    assert "max_parallel_tasks" not in exported and "run_as" not in exported["tasks"][0]
    assert notes == [
        "target dev: the lakehouse engine",
        "job dab_roundtrip_job: max_parallel_tasks 2",
        "job dab_roundtrip_job: webhook_notifications.on_start https://hooks.example.com/x "
        "(Databricks wants notification destination ids: {id: ...})",
        "job dab_roundtrip_job: webhook_notifications.on_failure https://hooks.example.com/y "
        "(Databricks wants notification destination ids: {id: ...})",
        "job dab_roundtrip_job, task notebook_task: run_as bob "
        "(Databricks runs every task as the job)",
    ]
    job["tasks"][0]["python_function_task"] = {"function": "pkg.mod:fn"}
    job_file.write_text(yaml.safe_dump(jobs, sort_keys=False))
    with pytest.raises(DabExportError, match=r"task notebook_task: a python_function_task"):
        export_databricks_bundle(dab_root)


def test_a_resource_defined_twice_is_an_error(dab_root: Path) -> None:
    shutil.copy(
        dab_root / "resources" / "dab_roundtrip.pipeline.yml",
        dab_root / "resources" / "zz_again.yml",
    )
    with pytest.raises(
        ConfigError, match=r"resources/zz_again.yml: resources\.pipelines\.dab_roundtrip_pipeline"
    ):
        merged_bundle(dab_root)


def test_the_cli_exports_the_imported_bundle_equal_to_its_input(
    dab_root: Path, tmp_path: Path
) -> None:
    out = dab_root / "exported.yml"  # next to databricks.yml: the paths read the same
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "BUNDLE_VAR"))}
    env["PYTHONPATH"] = str(REPO / "src")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lakehouse",
            "bundle",
            "export",
            "databricks",
            "-C",
            str(dab_root),
            "-o",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert _read(out) == _input_merged_by_hand(dab_root)
    project = load_project(dab_root)
    assert export_databricks(project) == _input_merged_by_hand(dab_root)


def test_airflow_runs_every_task_kind_through_bundle_run(dab_root: Path) -> None:
    project = load_project(dab_root)
    source = export_airflow(project, "dab_roundtrip_job")
    for key in ("notebook_task", "refresh_pipeline", "main_task", "plain_script"):
        assert f"tasks[{key!r}] = BashOperator(" in source
    assert "trigger_rule='all_done'" in source  # plain_script: run_if ALL_DONE
    assert "retry_exponential_backoff" not in source


# ---------------------------------------------------------------- the lakehouse dialect

DAB_KEYS_JOB: dict[str, Any] = {
    "name": "With Databricks keys",
    "trigger": {"pause_status": "PAUSED", "periodic": {"interval": 4, "unit": "HOURS"}},
    "parameters": [{"name": "run_date", "default": "${var.data_root}"}],
    "tags": {"team": "data"},
    "email_notifications": {"on_failure": ["oncall@example.com"]},
    "webhook_notifications": {
        "on_success": [{"id": "dest-9"}],
        "on_failure": [{"url": "https://hooks.example.com/f"}],
    },
    "job_clusters": [{"job_cluster_key": "c", "new_cluster": {"num_workers": 2}}],
    "environments": [{"environment_key": "e", "spec": {"client": "2"}}],
    "queue": {"enabled": True},
    "health": {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 600}]},
    "timeout_seconds": 7200,
    "performance_target": "STANDARD",
    "permissions": [{"level": "CAN_MANAGE_RUN", "group_name": "data-engineers"}],
    "tasks": [
        {
            "task_key": "ingest",
            "spark_python_task": {"python_file": "jobs/ingest_bronze.py"},
            "max_retries": -1,
            "min_retry_interval_millis": 30000,
        },
        {
            "task_key": "plain",
            "depends_on": [{"task_key": "ingest"}],
            "spark_python_task": {"python_file": "jobs/plain_report.py", "parameters": ["--x"]},
        },
    ],
}


@pytest.fixture()
def lakehouse_root(tmp_path: Path) -> Path:
    root = tmp_path / "lh"
    shutil.copytree(REPO / "conf", root / "conf")
    shutil.copytree(REPO / "jobs", root / "jobs")
    (root / "jobs" / "plain_report.py").write_text(
        "from pyspark.sql import SparkSession\n\nSparkSession.builder.getOrCreate()\n"
    )
    bundle = yaml.safe_load((REPO / "bundle.yml").read_text())
    bundle["resources"]["jobs"]["dab_keys"] = DAB_KEYS_JOB
    (root / "bundle.yml").write_text(yaml.safe_dump(bundle, sort_keys=False))
    return root


def test_a_lakehouse_bundle_keeps_its_databricks_keys(lakehouse_root: Path) -> None:
    project = load_project(lakehouse_root)
    assert not is_databricks_bundle(lakehouse_root)
    job = export_databricks(project, jobs=["dab_keys"])["resources"]["jobs"]["dab_keys"]
    for key in (
        "trigger",
        "parameters",
        "tags",
        "email_notifications",
        "job_clusters",
        "environments",
        "queue",
        "health",
        "timeout_seconds",
        "performance_target",
        "permissions",
    ):
        assert job[key] == DAB_KEYS_JOB[key], key
    assert job["webhook_notifications"] == {"on_success": [{"id": "dest-9"}]}
    ingest, plain = job["tasks"]
    # a lakehouse jobs/ script gets the target and job; -1 (retry indefinitely) as written
    assert ingest["spark_python_task"]["parameters"][:4] == [
        "--target",
        "${bundle.target}",
        "--job",
        "dab_keys",
    ]
    assert (ingest["max_retries"], ingest["min_retry_interval_millis"]) == (-1, 30000)
    # a plain PySpark script is passed as written
    assert plain == {
        "task_key": "plain",
        "depends_on": [{"task_key": "ingest"}],
        "spark_python_task": {"python_file": "jobs/plain_report.py", "parameters": ["--x"]},
    }


def test_airflow_retries_as_databricks_and_caps_unlimited(lakehouse_root: Path) -> None:
    source = export_airflow(load_project(lakehouse_root), "dab_keys")
    assert "retries=25,  # max_retries: -1 (unlimited), capped" in source
    assert "retry_delay=timedelta(milliseconds=30000)," in source
    assert "retry_exponential_backoff" not in source


def test_airflow_dag_has_the_job_parameters_and_the_periodic_trigger(
    lakehouse_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jinja2

    from tests.bundle.test_export import _run_with_fake_airflow

    project = load_project(lakehouse_root)
    namespace = _run_with_fake_airflow(export_airflow(project, "dab_keys"), monkeypatch)
    dag = namespace["dag"]
    assert dag.kwargs["schedule"].total_seconds() == 4 * 3600  # trigger.periodic: 4 HOURS
    assert dag.kwargs["is_paused_upon_creation"] is True  # the trigger is PAUSED
    assert dag.kwargs["dagrun_timeout"].total_seconds() == 7200  # the job's timeout_seconds
    assert dag.kwargs["params"] == {"run_date": "./data"}  # ${var.data_root}, resolved
    command = dag.tasks["plain"].kwargs["bash_command"]
    assert command.endswith(" --params run_date={{ params['run_date'] | shquote }}")
    # Airflow renders it per DAG run: a value given at trigger time reaches the task, quoted
    env = jinja2.Environment()
    env.filters.update(dag.kwargs["user_defined_filters"])
    rendered = env.from_string(command).render(params={"run_date": "it's 2026"})
    assert rendered.endswith(" --params run_date='it'\"'\"'s 2026'")
    assert not [n for n in airflow_notes(project, "dab_keys") if "trigger" in n]


def test_include_patterns_as_databricks_reads_them(dab_root: Path) -> None:
    """A pattern may match the root file itself or nothing at all; lakehouse conf parts of
    an included file are not Databricks keys."""
    path = dab_root / "databricks.yml"
    doc = _read(path)
    doc["include"] = ["*.yml", "resources/*.yml", "extra/*.yml", "conf/*.yml"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    (dab_root / "conf").mkdir()
    (dab_root / "conf" / "catalog.yml").write_text("catalog: {name: main}\n")
    assert merged_bundle(dab_root) == _input_merged_by_hand(dab_root)
