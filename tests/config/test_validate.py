"""Reference checks of the resolved project: tables, columns, keys and features named in conf/."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.config import load_project
from tests.config.editing import FEATURES, edit_gold, edit_model, edit_yaml, load_error


def test_reference_to_unknown_table(demo_project_dir: Path) -> None:
    edit_yaml(
        demo_project_dir / "conf" / "sources.yml",
        lambda d: d["sources"]["orders_drop"].update({"target": "lakehouse.bronze.nope"}),
    )
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/sources.yml", "sources.orders_drop.target")
    assert "unknown table 'lakehouse.bronze.nope'" in err.message


def test_gold_timestamp_key_must_be_a_table_key(demo_project_dir: Path) -> None:
    edit_gold(demo_project_dir, FEATURES, timestamp_key="region")
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == (
        "conf/pipelines.yml",
        "gold.lakehouse.gold.customer_features.timestamp_key",
    )
    assert err.message == (
        "'region' must be one of the keys of lakehouse.gold.customer_features "
        "(catalog keys: customer_id, feature_ts)"
    )


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
    edit_model(demo_project_dir, lambda m: m["training_set"]["labels"].update({field: value}))
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.training_set.labels")
    assert err.message == f"column {column!r} is not a column of customers"


def test_model_label_may_be_a_sql_expression(demo_project_dir: Path) -> None:
    label = "CASE WHEN churned = 1 THEN 1 ELSE 0 END"
    edit_model(demo_project_dir, lambda m: m["training_set"]["labels"].update({"label": label}))
    assert load_project(demo_project_dir).models["churn"].training_set.labels.label == label


def test_model_label_table_must_exist(demo_project_dir: Path) -> None:
    edit_model(
        demo_project_dir,
        lambda m: m["training_set"]["labels"].update({"table": "${var.catalog}.silver.nope"}),
    )
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.training_set.labels.table")
    assert "unknown table 'lakehouse.silver.nope'" in err.message


def test_time_series_feature_table_needs_a_label_timestamp(demo_project_dir: Path) -> None:
    def edit(m: dict) -> None:
        del m["training_set"]["labels"]["timestamp"]
        m["split"] = {"by": "random", "test_size": 0.25}

    edit_model(demo_project_dir, edit)
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.training_set.labels.timestamp")
    assert err.message.startswith(
        "lakehouse.gold.customer_features is a time series feature table: the labels need a "
        "timestamp"
    )


def _features_without_timestamp_key(project_dir: Path) -> None:
    """Make customer_features a plain (one row per customer) feature table."""
    edit_gold(project_dir, FEATURES, timestamp_key=None)
    edit_yaml(
        project_dir / "conf" / "catalog.yml",
        lambda d: d["catalog"]["schemas"]["gold"]["tables"]["customer_features"].update(
            {"keys": ["customer_id"]}
        ),
    )
    edit_model(project_dir, lambda m: m["training_set"]["labels"].pop("timestamp"))


def test_time_split_needs_a_label_timestamp(demo_project_dir: Path) -> None:
    _features_without_timestamp_key(demo_project_dir)
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.split.by")
    assert err.message == (
        "a time-based split needs training_set.labels.timestamp (or use 'random')"
    )
    edit_model(demo_project_dir, lambda m: m["split"].update({"by": "random"}))
    project = load_project(demo_project_dir)
    assert project.models["churn"].split.by == "random"
    predictions = project.table("lakehouse.gold.churn_predictions").spec
    assert [c.name for c in predictions.columns][:2] == ["customer_id", "prediction"]


def test_feature_lookup_columns_must_exist(demo_project_dir: Path) -> None:
    edit_model(
        demo_project_dir,
        lambda m: m["training_set"]["features"][0]["features"].append("lifetime_value"),
    )
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.training_set.features[0]")
    assert err.message == "column 'lifetime_value' is not a column of customer_features"


def test_feature_lookup_keys_match_the_feature_table_keys(demo_project_dir: Path) -> None:
    lookup = lambda m: m["training_set"]["features"][0]  # noqa: E731
    edit_model(
        demo_project_dir, lambda m: lookup(m).update({"lookup_keys": ["customer_id", "updated_at"]})
    )
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == (
        "conf/models.yml",
        "models.churn.training_set.features[0].lookup_keys",
    )
    assert err.message == (
        "lakehouse.gold.customer_features is keyed by customer_id; give one lookup key per table key"
    )
    edit_model(demo_project_dir, lambda m: lookup(m).update({"lookup_keys": ["cust"]}))
    err = load_error(demo_project_dir)
    assert err.key == "models.churn.training_set.features[0].lookup_keys"
    assert err.message == "column 'cust' is not a column of customers"


def test_scoring_input_must_have_the_model_features(demo_project_dir: Path) -> None:
    edit_model(
        demo_project_dir,
        lambda m: m["scoring"].update({"input": "${var.catalog}.gold.daily_sales"}),
    )
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.scoring.input")
    assert err.message == "column 'plan' is not a column of daily_sales"


def test_the_task_defaults_to_classification_and_regression_promotes_on_rmse(
    demo_project_dir: Path,
) -> None:
    churn = load_project(demo_project_dir).models["churn"]
    assert (churn.task, churn.promotion.metric) == ("classification", "roc_auc")
    edit_yaml(  # the demo monitors roc_auc, not a regression metric
        demo_project_dir / "conf" / "monitoring.yml",
        lambda d: [d["monitoring"]["models"]["churn"].pop(k) for k in ("performance", "ab")],
    )
    edit_model(
        demo_project_dir,
        lambda m: m.update(
            {
                "task": "regression",
                "candidates": {"linear_regression": {}, "random_forest": {}},
                "promotion": {"min_improvement": 0.5},
            }
        ),
    )
    churn = load_project(demo_project_dir).models["churn"]
    assert (churn.task, churn.promotion.metric, churn.promotion.min_improvement) == (
        "regression",
        "rmse",
        0.5,
    )
    table = load_project(demo_project_dir).tables["lakehouse.gold.churn_predictions"]
    types = {c.name: c.type for c in table.spec.columns}
    assert types["prediction"] == "double" and "probability" not in types


@pytest.mark.parametrize(
    ("task", "candidates", "key", "message"),
    [
        (
            "regression",
            {"logistic_regression": {}},
            "models.churn.candidates.logistic_regression",
            "logistic_regression does not fit task: regression "
            "(estimators for regression: linear_regression, random_forest, gradient_boosting)",
        ),
        (
            "classification",
            {"ols": {"estimator": "linear_regression"}},
            "models.churn.candidates.ols.estimator",
            "linear_regression does not fit task: classification "
            "(estimators for classification: logistic_regression, random_forest, "
            "gradient_boosting)",
        ),
    ],
)
def test_a_candidate_must_fit_the_task(
    demo_project_dir: Path, task: str, candidates: dict[str, object], key: str, message: str
) -> None:
    edit_model(
        demo_project_dir,
        lambda m: m.update(
            {"task": task, "candidates": candidates, "promotion": {"metric": "accuracy"}}
            if task == "classification"
            else {"task": task, "candidates": candidates, "promotion": {}}
        ),
    )
    err = load_error(demo_project_dir)
    assert (err.file, err.key, err.message) == ("conf/models.yml", key, message)


def test_promotion_and_monitoring_metrics_must_be_of_the_task(demo_project_dir: Path) -> None:
    edit_model(
        demo_project_dir,
        lambda m: m.update(
            {"task": "regression", "candidates": {"random_forest": {}}, "promotion": {}}
        ),
    )
    # conf/monitoring.yml names roc_auc for churn: wrong for a regression model
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == (
        "conf/monitoring.yml",
        "monitoring.models.churn.performance.thresholds.roc_auc",
    )
    assert err.message == (
        "roc_auc is not a metric of model 'churn' (task: regression; metrics: rmse, mae, r2)"
    )
    edit_model(demo_project_dir, lambda m: m.update({"promotion": {"metric": "f1_macro"}}))
    err = load_error(demo_project_dir)
    assert (err.file, err.key) == ("conf/models.yml", "models.churn.promotion.metric")
    assert err.message.startswith("f1_macro is not a metric of task: regression")
