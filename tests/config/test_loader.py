"""Loading bundle.yml + conf/: interpolation, targets, overrides and errors naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.config import load_project
from lakehouse.config.loader import interpolate, parse_var_overrides
from lakehouse.config.sources import BRONZE_METADATA_COLUMNS
from lakehouse.config.system_tables import SystemTable
from lakehouse.core.errors import ConfigError
from tests.config.editing import DAILY_SALES, FEATURES, edit_gold, edit_model, edit_yaml, load_error


def test_demo_bundle_loads_with_resolved_tables(demo_project_dir: Path) -> None:
    project = load_project(demo_project_dir)
    assert project.name == "lakehouse_demo"
    assert project.target_name == "local"
    assert project.engine.kind == "sail"
    assert sorted(project.tables) == [
        "lakehouse.bronze.customers",
        "lakehouse.bronze.events",
        "lakehouse.bronze.orders",
        "lakehouse.bronze.predictions",
        "lakehouse.gold.churn_predictions",
        "lakehouse.gold.customer_features",
        "lakehouse.gold.daily_sales",
        "lakehouse.meta.access_audit",
        "lakehouse.meta.dq_results",
        "lakehouse.meta.gold_refreshes",
        "lakehouse.meta.http_responses",
        "lakehouse.meta.job_runs",
        "lakehouse.meta.lineage",
        "lakehouse.meta.model_monitoring",
        "lakehouse.meta.processed_files",
        "lakehouse.meta.silver_batches",
        "lakehouse.meta.silver_runs",
        "lakehouse.meta.sql_query_log",
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
    edit_yaml(
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
    assert cluster.engine.delta.packages == ["io.delta:delta-spark_2.13:4.4.0"]
    assert load_project(demo_project_dir, engine="spark").engine.kind == "spark"
    monkeypatch.setenv("LAKEHOUSE_ENGINE", "spark")
    assert load_project(demo_project_dir).engine.kind == "spark"
    assert load_project(demo_project_dir, engine="sail").engine.kind == "sail"
    remote = load_project(demo_project_dir, target="remote", engine="connect")
    assert remote.engine.remote == "sc://127.0.0.1:15002"


def test_unknown_key_names_file_and_key_path(demo_project_dir: Path) -> None:
    edit_yaml(
        demo_project_dir / "bundle.yml",
        lambda d: d["resources"]["jobs"]["demo"]["tasks"][1].update({"retries": 3}),
    )
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("bundle.yml", "resources.jobs.demo.tasks[1].retries")
    assert err.message == "unknown key"


def test_wrong_type_names_file_key_and_expectation(demo_project_dir: Path) -> None:
    edit_yaml(
        demo_project_dir / "bundle.yml",
        lambda d: d["targets"]["local"]["engine"].update({"kind": "duck"}),
    )
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("bundle.yml", "targets.local.engine.kind")
    assert "'sail', 'spark' or 'connect'" in err.message
    assert "'duck'" in err.message


def test_undefined_variable_is_an_error(demo_project_dir: Path) -> None:
    edit_yaml(
        demo_project_dir / "bundle.yml",
        lambda d: d["resources"]["jobs"]["demo"]["tasks"][0]["spark_python_task"].update(
            {"parameters": ["--landing", "${var.landing_dir}"]}
        ),
    )
    err = load_error(demo_project_dir)
    assert err.file == "bundle.yml"
    assert err.key == "resources.jobs.demo.tasks[0].spark_python_task.parameters[1]"
    assert "undefined variable 'landing_dir'" in err.message


def test_error_in_included_file_names_that_file(demo_project_dir: Path) -> None:
    edit_yaml(
        demo_project_dir / "conf" / "catalog.yml",
        lambda d: d["catalog"]["schemas"]["silver"]["tables"]["orders"]["columns"][5].update(
            {"type": "money"}
        ),
    )
    err = load_error(demo_project_dir)
    assert err.file == "conf/catalog.yml"
    assert err.key == "catalog.schemas.silver.tables.orders.columns[5].type"
    assert "not a Spark SQL type" in err.message


def test_dependency_cycle_and_unknown_dependency(demo_project_dir: Path) -> None:
    path = demo_project_dir / "bundle.yml"
    edit_yaml(
        path,
        lambda d: d["resources"]["jobs"]["demo"]["tasks"][0].update(
            {"depends_on": [{"task_key": "train_model"}]}
        ),
    )
    assert "dependency cycle" in load_error(demo_project_dir).message
    edit_yaml(
        path,
        lambda d: d["resources"]["jobs"]["demo"]["tasks"][0].update(
            {"depends_on": [{"task_key": "ghost"}]}
        ),
    )
    err = load_error(demo_project_dir)
    assert err.key == "resources.jobs.demo"
    assert "unknown task 'ghost'" in err.message


def test_duplicate_yaml_key_and_bad_yaml(demo_project_dir: Path) -> None:
    path = demo_project_dir / "bundle.yml"
    path.write_text(path.read_text() + "\nbundle:\n  name: again\n")
    err = load_error(demo_project_dir)
    assert err.file == "bundle.yml"
    assert "duplicate key 'bundle'" in err.message
    path.write_text("bundle: [unclosed\n")
    err = load_error(demo_project_dir)
    assert err.key.startswith("line ")


def test_cdf_property_is_refused(demo_project_dir: Path) -> None:
    edit_yaml(
        demo_project_dir / "conf" / "catalog.yml",
        lambda d: d["catalog"]["schemas"]["silver"]["tables"]["orders"].update(
            {"properties": {"delta.enableChangeDataFeed": "true"}}
        ),
    )
    err = load_error(demo_project_dir)
    assert "cannot write" in err.message


def test_unknown_target(demo_project_dir: Path) -> None:
    err = load_error(demo_project_dir, target="staging")
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


def test_gold_needs_exactly_one_of_transform_and_query(demo_project_dir: Path) -> None:
    edit_gold(demo_project_dir, FEATURES, query="SELECT * FROM customers")
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/pipelines.yml", "gold.lakehouse.gold.customer_features")
    assert err.message == "give exactly one of 'transform' or 'query'"
    edit_gold(demo_project_dir, FEATURES, query=None, transform=None)
    assert load_error(demo_project_dir).message == "give exactly one of 'transform' or 'query'"


def test_gold_query_takes_no_params(demo_project_dir: Path) -> None:
    edit_gold(demo_project_dir, DAILY_SALES, params={"days": 7})
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/pipelines.yml", "gold.lakehouse.gold.daily_sales")
    assert err.message == "'params' are passed to a 'transform'; a 'query' takes none"


def test_gold_refresh_incremental_needs_a_query_that_allows_it(demo_project_dir: Path) -> None:
    edit_gold(demo_project_dir, DAILY_SALES, refresh="incremental")
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/pipelines.yml", "gold.lakehouse.gold.daily_sales")
    assert err.message == "refresh: incremental is not possible: 2 inputs (joins are rebuilt)"
    edit_gold(demo_project_dir, DAILY_SALES, refresh="sometimes")
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/pipelines.yml", "gold.lakehouse.gold.daily_sales.refresh")
    assert "'auto', 'incremental' or 'full'" in err.message


def test_candidate_needs_an_estimator_unless_named_after_one(demo_project_dir: Path) -> None:
    edit_model(demo_project_dir, lambda m: m["candidates"].update({"xgboost": {"params": {}}}))
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.candidates")
    assert err.message.startswith("candidate 'xgboost' needs 'estimator' (one of")
    edit_model(
        demo_project_dir,
        lambda m: m["candidates"].update({"xgboost": {"estimator": "svm"}}),
    )
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.candidates.xgboost.estimator")
    assert "'svm'" in err.message
    edit_model(
        demo_project_dir,
        lambda m: m["candidates"].update(
            {"deep_forest": {"estimator": "random_forest", "params": {"max_depth": 16}}}
        ),
    )
    edit_model(demo_project_dir, lambda m: m["candidates"].pop("xgboost"))
    model = load_project(demo_project_dir).models["churn"]
    assert model.estimator_of("deep_forest") == "random_forest"
    assert model.estimator_of("gradient_boosting") == "gradient_boosting"


def test_generated_predictions_table(demo_project_dir: Path) -> None:
    project = load_project(demo_project_dir)
    table = project.table("lakehouse.gold.churn_predictions")
    assert table.location == str(
        demo_project_dir / "data" / "tables" / "gold" / "churn_predictions"
    )
    assert table.spec.layer == "gold"
    assert table.spec.keys == ["customer_id"]
    assert [(c.name, c.type, c.nullable) for c in table.spec.columns] == [
        ("customer_id", "string", False),
        ("feature_ts", "timestamp", True),
        ("prediction", "int", False),
        ("probability", "double", False),
        ("model_name", "string", False),
        ("model_version", "string", False),
        ("scored_at", "timestamp", False),
        ("run_id", "string", False),
    ]


def test_declared_predictions_table_is_kept(demo_project_dir: Path) -> None:
    declared = {
        "layer": "gold",
        "keys": ["customer_id"],
        "columns": [
            {"name": "customer_id", "type": "string", "nullable": False},
            {"name": "prediction", "type": "int"},
            {"name": "probability", "type": "double"},
            {"name": "note", "type": "string"},
        ],
    }
    edit_yaml(
        demo_project_dir / "conf" / "catalog.yml",
        lambda d: d["catalog"]["schemas"]["gold"]["tables"].update({"churn_predictions": declared}),
    )
    spec = load_project(demo_project_dir).table("lakehouse.gold.churn_predictions").spec
    assert [c.name for c in spec.columns] == ["customer_id", "prediction", "probability", "note"]


def test_table_handles_are_built_once_with_source_quarantine_and_keys(
    demo_project_dir: Path,
) -> None:
    project = load_project(demo_project_dir)
    assert sorted(project.silver_handles) == sorted(project.silver)
    assert sorted(project.gold_handles) == sorted(project.gold)
    orders = project.silver_handle("lakehouse.silver.orders")
    assert orders is project.silver_handle("lakehouse.silver.orders")  # resolved once
    assert orders.table is project.table("lakehouse.silver.orders")
    assert orders.spec is project.silver["lakehouse.silver.orders"]
    assert orders.source is project.table("lakehouse.bronze.orders")
    assert orders.quarantine is project.table("lakehouse.silver.orders_quarantine")
    assert orders.quarantine.full_name == project.quarantine_table(orders.name)
    assert orders.keys == ("order_id",)
    customers = project.silver_handle("lakehouse.silver.customers")
    assert customers.spec.mode == "scd2"
    assert customers.keys == ("customer_id",)  # the merge keys, not the table's (+ valid_from)
    assert customers.quarantine.name == "customers_quarantine"
    sales_name = "lakehouse.gold.daily_sales"
    sales = project.gold_handle(sales_name)
    assert sales is project.gold_handle(sales_name)
    assert sales.table is project.table(sales_name)
    assert sales.upstream == (
        project.table("lakehouse.silver.orders"),
        project.table("lakehouse.silver.customers"),
    )
    assert {a: r.full_name for a, r in sales.inputs.items()} == {
        "orders": "lakehouse.silver.orders",
        "customers": "lakehouse.silver.customers",
    }
    with pytest.raises(ConfigError, match="no such Silver table"):
        project.silver_handle("lakehouse.silver.nope")
    with pytest.raises(ConfigError, match="no such Gold table"):
        project.gold_handle("lakehouse.silver.orders")


def test_source_and_model_handles_are_built_once_with_their_tables(
    demo_project_dir: Path,
) -> None:
    project = load_project(demo_project_dir)
    assert sorted(project.source_handles) == sorted(project.sources)
    assert sorted(project.model_handles) == sorted(project.models)
    orders = project.source_handle("orders_drop")
    assert orders is project.source_handle("orders_drop")  # resolved once
    assert orders.name == "orders_drop"
    assert orders.spec is project.sources["orders_drop"]
    assert orders.target is project.table("lakehouse.bronze.orders")
    churn = project.model_handle("churn")
    assert churn is project.model_handle("churn")
    assert churn.spec is project.models["churn"]
    assert churn.registered_name == "churn_model"
    assert churn.labels is project.table("lakehouse.silver.customers")
    features_table = project.table("lakehouse.gold.customer_features")
    (features,) = churn.features
    assert features.spec is project.models["churn"].training_set.features[0]
    assert features.source.table is features_table
    assert features.source.keys == ("customer_id",)  # the table's keys minus its time key
    assert features.source.timestamp_key == "feature_ts"
    assert features.label_keys == ["customer_id"]
    assert churn.inputs == (churn.labels, features_table)
    assert churn.scoring is not None
    assert churn.scoring.input == features.source
    assert churn.scoring.output is project.table("lakehouse.gold.churn_predictions")
    assert churn.scoring.label_keys == ("customer_id",)
    assert project.system_table(SystemTable.DQ_RESULTS).full_name == "lakehouse.meta.dq_results"
    with pytest.raises(ConfigError, match="no such source"):
        project.source_handle("nope")
    with pytest.raises(ConfigError, match="no such model"):
        project.model_handle("nope")
