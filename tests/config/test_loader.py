"""Loading bundle.yml + conf/: interpolation, targets, overrides and errors naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lakehouse.config import load_project
from lakehouse.config.loader import interpolate, parse_var_overrides
from lakehouse.config.models import BRONZE_METADATA_COLUMNS
from lakehouse.core.errors import ConfigError


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
        "lakehouse.bronze.predictions",
        "lakehouse.gold.churn_predictions",
        "lakehouse.gold.customer_features",
        "lakehouse.gold.daily_sales",
        "lakehouse.meta.access_audit",
        "lakehouse.meta.dq_results",
        "lakehouse.meta.http_responses",
        "lakehouse.meta.job_runs",
        "lakehouse.meta.lineage",
        "lakehouse.meta.model_monitoring",
        "lakehouse.meta.processed_files",
        "lakehouse.meta.silver_batches",
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


# ---------------------------------------------------------------- Gold and models

FEATURES = "${var.catalog}.gold.customer_features"
DAILY_SALES = "${var.catalog}.gold.daily_sales"


def _edit_gold(project_dir: Path, table: str, **changes: object) -> None:
    """Set (or, with None, remove) keys of one Gold table in conf/pipelines.yml."""

    def edit(d: dict) -> None:
        spec = d["gold"][table]
        for k, v in changes.items():
            if v is None:
                spec.pop(k, None)
            else:
                spec[k] = v

    _edit_yaml(project_dir / "conf" / "pipelines.yml", edit)


def _edit_model(project_dir: Path, edit) -> None:  # type: ignore[no-untyped-def]
    _edit_yaml(project_dir / "conf" / "models.yml", lambda d: edit(d["models"]["churn"]))


def test_gold_timestamp_key_must_be_a_table_key(demo_project_dir: Path) -> None:
    _edit_gold(demo_project_dir, FEATURES, timestamp_key="region")
    err = _error(demo_project_dir)
    assert (err.file, err.key) == (
        "conf/pipelines.yml",
        "gold.lakehouse.gold.customer_features.timestamp_key",
    )
    assert err.message == (
        "'region' must be one of the keys of lakehouse.gold.customer_features "
        "(catalog keys: customer_id, feature_ts)"
    )


def test_gold_needs_exactly_one_of_transform_and_query(demo_project_dir: Path) -> None:
    _edit_gold(demo_project_dir, FEATURES, query="SELECT * FROM customers")
    err = _error(demo_project_dir)
    assert (err.file, err.key) == ("conf/pipelines.yml", "gold.lakehouse.gold.customer_features")
    assert err.message == "give exactly one of 'transform' or 'query'"
    _edit_gold(demo_project_dir, FEATURES, query=None, transform=None)
    assert _error(demo_project_dir).message == "give exactly one of 'transform' or 'query'"


def test_gold_query_takes_no_params(demo_project_dir: Path) -> None:
    _edit_gold(demo_project_dir, DAILY_SALES, params={"days": 7})
    err = _error(demo_project_dir)
    assert (err.file, err.key) == ("conf/pipelines.yml", "gold.lakehouse.gold.daily_sales")
    assert err.message == "'params' are passed to a 'transform'; a 'query' takes none"


@pytest.mark.parametrize(
    ("field", "value", "column"),
    [
        ("label", "churnd", "churnd"),
        ("keys", ["customer"], "customer"),
        ("timestamp", "labelled_at", "labelled_at"),
    ],
)
def test_model_label_columns_must_exist(
    demo_project_dir: Path, field: str, value: object, column: str
) -> None:
    _edit_model(demo_project_dir, lambda m: m["training_set"]["labels"].update({field: value}))
    err = _error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.training_set.labels")
    assert err.message == f"column {column!r} is not a column of customers"


def test_model_label_may_be_a_sql_expression(demo_project_dir: Path) -> None:
    label = "CASE WHEN churned = 1 THEN 1 ELSE 0 END"
    _edit_model(demo_project_dir, lambda m: m["training_set"]["labels"].update({"label": label}))
    assert load_project(demo_project_dir).models["churn"].training_set.labels.label == label


def test_model_label_table_must_exist(demo_project_dir: Path) -> None:
    _edit_model(
        demo_project_dir,
        lambda m: m["training_set"]["labels"].update({"table": "${var.catalog}.silver.nope"}),
    )
    err = _error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.training_set.labels.table")
    assert "unknown table 'lakehouse.silver.nope'" in err.message


def test_time_series_feature_table_needs_a_label_timestamp(demo_project_dir: Path) -> None:
    def edit(m: dict) -> None:
        del m["training_set"]["labels"]["timestamp"]
        m["split"] = {"by": "random", "test_size": 0.25}

    _edit_model(demo_project_dir, edit)
    err = _error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.training_set.labels.timestamp")
    assert err.message.startswith(
        "lakehouse.gold.customer_features is a time series feature table: the labels need a "
        "timestamp"
    )


def _features_without_timestamp_key(project_dir: Path) -> None:
    """Make customer_features a plain (one row per customer) feature table."""
    _edit_gold(project_dir, FEATURES, timestamp_key=None)
    _edit_yaml(
        project_dir / "conf" / "catalog.yml",
        lambda d: d["catalog"]["schemas"]["gold"]["tables"]["customer_features"].update(
            {"keys": ["customer_id"]}
        ),
    )
    _edit_model(project_dir, lambda m: m["training_set"]["labels"].pop("timestamp"))


def test_time_split_needs_a_label_timestamp(demo_project_dir: Path) -> None:
    _features_without_timestamp_key(demo_project_dir)
    err = _error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.split.by")
    assert err.message == (
        "a time-based split needs training_set.labels.timestamp (or use 'random')"
    )
    _edit_model(demo_project_dir, lambda m: m["split"].update({"by": "random"}))
    project = load_project(demo_project_dir)
    assert project.models["churn"].split.by == "random"
    predictions = project.table("lakehouse.gold.churn_predictions").spec
    assert [c.name for c in predictions.columns][:2] == ["customer_id", "prediction"]


def test_candidate_needs_an_estimator_unless_named_after_one(demo_project_dir: Path) -> None:
    _edit_model(demo_project_dir, lambda m: m["candidates"].update({"xgboost": {"params": {}}}))
    err = _error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.candidates")
    assert err.message.startswith("candidate 'xgboost' needs 'estimator' (one of")
    _edit_model(
        demo_project_dir,
        lambda m: m["candidates"].update({"xgboost": {"estimator": "svm"}}),
    )
    err = _error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.candidates.xgboost.estimator")
    assert "'svm'" in err.message
    _edit_model(
        demo_project_dir,
        lambda m: m["candidates"].update(
            {"deep_forest": {"estimator": "random_forest", "params": {"max_depth": 16}}}
        ),
    )
    _edit_model(demo_project_dir, lambda m: m["candidates"].pop("xgboost"))
    model = load_project(demo_project_dir).models["churn"]
    assert model.estimator_of("deep_forest") == "random_forest"
    assert model.estimator_of("gradient_boosting") == "gradient_boosting"


def test_feature_lookup_columns_must_exist(demo_project_dir: Path) -> None:
    _edit_model(
        demo_project_dir,
        lambda m: m["training_set"]["features"][0]["features"].append("lifetime_value"),
    )
    err = _error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.training_set.features[0]")
    assert err.message == "column 'lifetime_value' is not a column of customer_features"


def test_feature_lookup_keys_match_the_feature_table_keys(demo_project_dir: Path) -> None:
    lookup = lambda m: m["training_set"]["features"][0]  # noqa: E731
    _edit_model(
        demo_project_dir, lambda m: lookup(m).update({"lookup_keys": ["customer_id", "updated_at"]})
    )
    err = _error(demo_project_dir)
    assert (err.file, err.key) == (
        "conf/models.yml",
        "models.churn.training_set.features[0].lookup_keys",
    )
    assert err.message == (
        "lakehouse.gold.customer_features is keyed by customer_id; give one lookup key per table key"
    )
    _edit_model(demo_project_dir, lambda m: lookup(m).update({"lookup_keys": ["cust"]}))
    err = _error(demo_project_dir)
    assert err.key == "models.churn.training_set.features[0].lookup_keys"
    assert err.message == "column 'cust' is not a column of customers"


def test_scoring_input_must_have_the_model_features(demo_project_dir: Path) -> None:
    _edit_model(
        demo_project_dir,
        lambda m: m["scoring"].update({"input": "${var.catalog}.gold.daily_sales"}),
    )
    err = _error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.scoring.input")
    assert err.message == "column 'plan' is not a column of daily_sales"


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
    _edit_yaml(
        demo_project_dir / "conf" / "catalog.yml",
        lambda d: d["catalog"]["schemas"]["gold"]["tables"].update({"churn_predictions": declared}),
    )
    spec = load_project(demo_project_dir).table("lakehouse.gold.churn_predictions").spec
    assert [c.name for c in spec.columns] == ["customer_id", "prediction", "probability", "note"]
