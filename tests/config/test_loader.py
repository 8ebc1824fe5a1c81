"""Loading bundle.yml + conf/: interpolation, targets, overrides and errors naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lakehouse.config import load_project
from lakehouse.config.loader import interpolate, parse_var_overrides
from lakehouse.config.models import BRONZE_METADATA_COLUMNS
from lakehouse.errors import ConfigError


def _edit_yaml(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_demo_bundle_loads_with_resolved_tables(demo_project_dir: Path) -> None:
    project = load_project(demo_project_dir)
    assert project.name == "lakehouse_demo"
    assert project.target_name == "local"
    assert project.engine.kind == "sail"
    assert sorted(project.tables) == [
        "lakehouse.bronze.customers",
        "lakehouse.bronze.events",
        "lakehouse.bronze.orders",
        "lakehouse.gold.customer_features",
        "lakehouse.meta.dq_results",
        "lakehouse.meta.http_responses",
        "lakehouse.meta.processed_files",
        "lakehouse.meta.silver_runs",
        "lakehouse.silver.customers",
        "lakehouse.silver.customers_quarantine",
        "lakehouse.silver.events",
        "lakehouse.silver.events_quarantine",
        "lakehouse.silver.orders",
        "lakehouse.silver.orders_quarantine",
    ]
    orders = project.table("lakehouse.silver.orders")
    assert orders.location == str(demo_project_dir / "data" / "tables" / "silver" / "orders")
    assert orders.engine_name == "silver.orders"
    bronze_cols = [c.name for c in project.table("lakehouse.bronze.orders").spec.columns]
    assert bronze_cols[:2] == ["order_id", "customer_id"]
    assert bronze_cols[-len(BRONZE_METADATA_COLUMNS) :] == [c.name for c in BRONZE_METADATA_COLUMNS]


def test_variable_precedence_default_target_env_cli(
    demo_project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_project(demo_project_dir).variables["catalog"] == "lakehouse"
    _edit_yaml(
        demo_project_dir / "bundle.yml",
        lambda d: d["targets"]["local"].update({"variables": {"catalog": "from_target"}}),
    )
    assert load_project(demo_project_dir).variables["catalog"] == "from_target"
    monkeypatch.setenv("LAKEHOUSE_VAR_catalog", "from_env")
    project = load_project(demo_project_dir)
    assert project.variables["catalog"] == "from_env"
    assert "from_env.silver.orders" in project.tables
    project = load_project(demo_project_dir, var_overrides={"catalog": "from_cli"})
    assert project.catalog.name == "from_cli"


def test_target_and_engine_overrides(
    demo_project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = load_project(demo_project_dir, target="cluster")
    assert cluster.engine.kind == "spark"
    assert cluster.engine.delta.packages == ["io.delta:delta-spark_2.13:4.0.1"]
    assert load_project(demo_project_dir, engine="spark").engine.kind == "spark"
    monkeypatch.setenv("LAKEHOUSE_ENGINE", "spark")
    assert load_project(demo_project_dir).engine.kind == "spark"
    assert load_project(demo_project_dir, engine="sail").engine.kind == "sail"
    remote = load_project(demo_project_dir, target="remote", engine="connect")
    assert remote.engine.remote == "sc://127.0.0.1:15002"


def _error(project_dir: Path, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_project(project_dir, **kwargs)  # type: ignore[arg-type]
    return info.value


def test_unknown_key_names_file_and_key_path(demo_project_dir: Path) -> None:
    _edit_yaml(
        demo_project_dir / "bundle.yml",
        lambda d: d["resources"]["jobs"]["demo"]["tasks"][1].update({"retries": 3}),
    )
    err = _error(demo_project_dir)
    assert (err.file, err.key) == ("bundle.yml", "resources.jobs.demo.tasks[1].retries")
    assert err.message == "unknown key"


def test_wrong_type_names_file_key_and_expectation(demo_project_dir: Path) -> None:
    _edit_yaml(
        demo_project_dir / "bundle.yml",
        lambda d: d["targets"]["local"]["engine"].update({"kind": "duck"}),
    )
    err = _error(demo_project_dir)
    assert (err.file, err.key) == ("bundle.yml", "targets.local.engine.kind")
    assert "'sail', 'spark' or 'connect'" in err.message
    assert "'duck'" in err.message


def test_undefined_variable_is_an_error(demo_project_dir: Path) -> None:
    _edit_yaml(
        demo_project_dir / "bundle.yml",
        lambda d: d["resources"]["jobs"]["demo"]["tasks"][0]["spark_python_task"].update(
            {"parameters": ["--landing", "${var.landing_dir}"]}
        ),
    )
    err = _error(demo_project_dir)
    assert err.file == "bundle.yml"
    assert err.key == "resources.jobs.demo.tasks[0].spark_python_task.parameters[1]"
    assert "undefined variable 'landing_dir'" in err.message


def test_error_in_included_file_names_that_file(demo_project_dir: Path) -> None:
    _edit_yaml(
        demo_project_dir / "conf" / "catalog.yml",
        lambda d: d["catalog"]["schemas"]["silver"]["tables"]["orders"]["columns"][5].update(
            {"type": "money"}
        ),
    )
    err = _error(demo_project_dir)
    assert err.file == "conf/catalog.yml"
    assert err.key == "catalog.schemas.silver.tables.orders.columns[5].type"
    assert "not a Spark SQL type" in err.message


def test_reference_to_unknown_table(demo_project_dir: Path) -> None:
    _edit_yaml(
        demo_project_dir / "conf" / "sources.yml",
        lambda d: d["sources"]["orders_drop"].update({"target": "lakehouse.bronze.nope"}),
    )
    err = _error(demo_project_dir)
    assert (err.file, err.key) == ("conf/sources.yml", "sources.orders_drop.target")
    assert "unknown table 'lakehouse.bronze.nope'" in err.message


def test_dependency_cycle_and_unknown_dependency(demo_project_dir: Path) -> None:
    path = demo_project_dir / "bundle.yml"
    _edit_yaml(
        path,
        lambda d: d["resources"]["jobs"]["demo"]["tasks"][0].update(
            {"depends_on": [{"task_key": "train_model"}]}
        ),
    )
    assert "dependency cycle" in _error(demo_project_dir).message
    _edit_yaml(
        path,
        lambda d: d["resources"]["jobs"]["demo"]["tasks"][0].update(
            {"depends_on": [{"task_key": "ghost"}]}
        ),
    )
    err = _error(demo_project_dir)
    assert err.key == "resources.jobs.demo"
    assert "unknown task 'ghost'" in err.message


def test_duplicate_yaml_key_and_bad_yaml(demo_project_dir: Path) -> None:
    path = demo_project_dir / "bundle.yml"
    path.write_text(path.read_text() + "\nbundle:\n  name: again\n")
    err = _error(demo_project_dir)
    assert err.file == "bundle.yml"
    assert "duplicate key 'bundle'" in err.message
    path.write_text("bundle: [unclosed\n")
    err = _error(demo_project_dir)
    assert err.key.startswith("line ")


def test_cdf_property_is_refused(demo_project_dir: Path) -> None:
    _edit_yaml(
        demo_project_dir / "conf" / "catalog.yml",
        lambda d: d["catalog"]["schemas"]["silver"]["tables"]["orders"].update(
            {"properties": {"delta.enableChangeDataFeed": "true"}}
        ),
    )
    err = _error(demo_project_dir)
    assert "cannot write" in err.message


def test_unknown_target(demo_project_dir: Path) -> None:
    err = _error(demo_project_dir, target="staging")
    assert (err.file, err.key) == ("bundle.yml", "targets.staging")


def test_interpolation_in_keys_and_embedded_strings() -> None:
    context = {"var.cat": "main", "bundle.target": "local"}
    out = interpolate({"${var.cat}.silver.t": ["x-${bundle.target}-y"]}, context, "f.yml")
    assert out == {"main.silver.t": ["x-local-y"]}
    with pytest.raises(ConfigError, match=r"unknown reference '\$\{workspace.root\}'"):
        interpolate({"a": "${workspace.root}"}, context, "f.yml")


def test_parse_var_overrides() -> None:
    assert parse_var_overrides(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(ConfigError):
        parse_var_overrides(["novalue"])
