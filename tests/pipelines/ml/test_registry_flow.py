"""Training, registration, promotion and batch scoring against a real MLflow (sqlite, temp dir)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from lakehouse.bundle.context import TaskContext
from lakehouse.config.ml import CandidateSpec, PromotionSpec
from lakehouse.core.errors import LakehouseError
from lakehouse.pipelines.ml.registry import list_versions, tracking_uri
from lakehouse.pipelines.ml.score import score_model
from lakehouse.pipelines.ml.train import PROMOTION_TAG, train_model, train_models
from tests.pipelines.ml.conftest import ContextFactory

MODEL = "churn"
NAME = "churn_model"
WEAK = {
    "weak": CandidateSpec(estimator="random_forest", params={"n_estimators": 1, "max_depth": 1})
}
LENIENT = PromotionSpec(metric="roc_auc", min_improvement=0.005, thresholds={"roc_auc": 0.5})


def _with(ctx: TaskContext, **update: Any) -> TaskContext:
    spec = ctx.project.models[MODEL].model_copy(update=update)
    ctx.project.models[MODEL] = spec
    handles = ctx.project.model_handles
    handles[MODEL] = dataclasses.replace(handles[MODEL], spec=spec)
    return ctx


def _client(ctx: TaskContext) -> MlflowClient:
    uri = tracking_uri(ctx.project)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _aliases(client: MlflowClient) -> dict[str, str]:
    return {a: str(v) for a, v in client.get_registered_model(NAME).aliases.items()}


def test_a_better_challenger_is_promoted(ml_context: ContextFactory) -> None:
    weak = train_model(_with(ml_context(), candidates=WEAK, promotion=LENIENT), MODEL)
    assert (weak.version, weak.aliases, weak.promoted) == ("1", ["challenger", "champion"], True)

    strong = train_model(_with(ml_context(), promotion=LENIENT), MODEL)
    assert strong.version == "2" and strong.promoted
    assert strong.metrics["roc_auc"] > weak.metrics["roc_auc"] + 0.005
    client = _client(ml_context())
    assert _aliases(client) == {"champion": "2", "challenger": "2"}
    reason = client.get_model_version(NAME, "2").tags[PROMOTION_TAG]
    assert "vs champion v1" in reason and ">= margin 0.005" in reason


def test_a_worse_challenger_leaves_the_champion(ml_context: ContextFactory) -> None:
    strong = train_model(_with(ml_context(), promotion=LENIENT), MODEL)
    assert strong.promoted and strong.version == "1"
    weak = train_model(_with(ml_context(), candidates=WEAK, promotion=LENIENT), MODEL)
    assert weak.version == "2" and weak.promoted is False
    assert weak.aliases == ["challenger"]
    client = _client(ml_context())
    assert _aliases(client) == {"champion": "1", "challenger": "2"}
    reason = client.get_model_version(NAME, "2").tags[PROMOTION_TAG]
    assert "vs champion v1" in reason and "< margin 0.005" in reason
    # the reason is on the parent training run too, and in the version's description
    version = client.get_model_version(NAME, "2")
    parent_id = client.get_run(version.run_id).data.tags["mlflow.parentRunId"]
    assert client.get_run(parent_id).data.tags[PROMOTION_TAG] == reason
    assert reason in version.description


def test_thresholds_keep_a_weak_first_model_from_becoming_champion(
    ml_context: ContextFactory,
) -> None:
    strict = PromotionSpec(metric="roc_auc", thresholds={"roc_auc": 0.99, "f1": 0.9})
    result = train_model(_with(ml_context(), candidates=WEAK, promotion=strict), MODEL)
    assert result.aliases == ["challenger"] and result.promoted is False
    assert "below the threshold" in result.note and "f1" in result.note
    assert _aliases(_client(ml_context())) == {"challenger": "1"}
    with pytest.raises(LakehouseError, match="no @champion"):
        score_model(ml_context(), MODEL)


def test_the_demo_model_learns_and_retraining_reproduces_it(ml_context: ContextFactory) -> None:
    first = train_model(ml_context(), MODEL)
    # the demo data's signal: the champion clears 0.75 ROC AUC and a linear model is not best
    assert first.metrics["roc_auc"] >= 0.75
    assert first.best != "logistic_regression"
    assert set(first.candidates) == {"logistic_regression", "random_forest", "gradient_boosting"}
    aucs = {name: m["roc_auc"] for name, m in first.candidates.items()}
    assert max(aucs, key=aucs.__getitem__) == first.best

    unchanged = train_model(ml_context(), MODEL)
    assert not unchanged.retrained and unchanged.version == first.version

    again = train_model(ml_context(), MODEL, force=True)
    assert again.retrained and again.version == "2"
    for name, metrics in first.candidates.items():
        timeless = {k: v for k, v in metrics.items() if not k.endswith("_seconds")}
        assert timeless == {
            k: v for k, v in again.candidates[name].items() if not k.endswith("_seconds")
        }
    assert again.promoted is False  # equal, not better by the margin
    assert [v.aliases for v in list_versions(_client(ml_context()), NAME)] == [
        ["challenger"],
        ["champion"],
    ]


def test_every_candidate_is_logged_with_inputs_signature_and_commit(
    ml_context: ContextFactory,
) -> None:
    ctx = ml_context()
    result = train_model(ctx, MODEL)
    client = _client(ctx)
    version = client.get_model_version(NAME, result.version)
    best_run = client.get_run(version.run_id)
    parent_id = best_run.data.tags["mlflow.parentRunId"]
    children = client.search_runs(
        [best_run.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert sorted(r.info.run_name for r in children) == [
        "gradient_boosting",
        "logistic_regression",
        "random_forest",
    ]
    versions = {
        "lakehouse.silver.customers": ctx.tables.version("lakehouse.silver.customers"),
        "lakehouse.gold.customer_features": ctx.tables.version("lakehouse.gold.customer_features"),
    }
    for run in children:
        assert {"accuracy", "precision", "recall", "f1", "roc_auc"} <= set(run.data.metrics)
        assert {"training_seconds", "prediction_seconds"} <= set(run.data.metrics)
        assert run.data.params["estimator"] == run.info.run_name
        assert run.data.params["random_state"] == "42"
        assert len(run.data.tags["mlflow.source.git.commit"]) == 40
        assert json.loads(run.data.tags["lakehouse.input_tables"]) == versions
        logged = {d.dataset.name: json.loads(d.dataset.source) for d in run.inputs.dataset_inputs}
        for table, table_version in versions.items():
            assert logged[table]["path"] == ctx.project.table(table).location
            assert logged[table].get("delta_table_version", 0) == table_version
        assert {"training_set", "holdout"} <= set(logged)
    info = mlflow.models.get_model_info(f"models:/{NAME}/{result.version}")
    assert info.signature is not None
    assert [c.name for c in info.signature.inputs.inputs] == ctx.project.models[MODEL].features


@pytest.mark.delta
def test_scoring_writes_one_champion_prediction_per_key(ml_context: ContextFactory) -> None:
    ctx = ml_context()
    result = train_model(ctx, MODEL)
    score_model(ctx, MODEL)
    predictions = ctx.tables.read("lakehouse.gold.churn_predictions").toPandas()
    features = ctx.tables.read("lakehouse.gold.customer_features")
    assert len(predictions) == predictions["customer_id"].nunique()
    assert len(predictions) == features.select("customer_id").distinct().count()
    assert set(predictions["model_version"]) == {result.version}
    assert set(predictions["model_name"]) == {NAME}
    assert predictions["probability"].between(0, 1).all()
    assert predictions["scored_at"].nunique() == 1
    # each customer was scored on its latest snapshot
    latest = features.groupBy("customer_id").agg({"feature_ts": "max"}).toPandas()
    merged = predictions.merge(latest, on="customer_id")
    assert (merged["feature_ts"] == merged["max(feature_ts)"]).all()

    sample = (
        features.join(
            ctx.spark.createDataFrame(predictions[["customer_id", "feature_ts"]].head(50)),
            ["customer_id", "feature_ts"],
        )
        .orderBy("customer_id")
        .toPandas()
    )
    mlflow.set_tracking_uri(tracking_uri(ctx.project))
    mlflow.set_registry_uri(tracking_uri(ctx.project))
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    spec = ctx.project.models[MODEL]
    from lakehouse.pipelines.ml.train import model_input

    x = model_input(sample, spec.features, ["region", "plan"])
    expected = sample[["customer_id"]].assign(
        prediction=model.predict(x),
        probability=model.get_raw_model().predict_proba(x)[:, 1],
    )
    got = (
        predictions.set_index("customer_id")
        .loc[expected["customer_id"], ["prediction", "probability"]]
        .reset_index()
    )
    assert got["prediction"].tolist() == expected["prediction"].tolist()
    assert np.allclose(got["probability"], expected["probability"])


def test_force_is_a_train_model_task_parameter(ml_context: ContextFactory) -> None:
    """``parameters: [--force]`` in bundle.yml (or on a jobs/ script) retrains, as ``--force`` does."""

    def run_task(*parameters: str) -> bool:
        ctx = ml_context()
        ctx.parameters = list(parameters)
        train_models(ctx)
        assert [m.name for m in ctx.report.models] == [NAME]
        return ctx.report.models[0].retrained

    assert run_task(MODEL)
    assert not run_task()  # unchanged data and settings: the version is reused
    assert run_task("--force")
    with pytest.raises(LakehouseError, match=r"task train_model: unknown parameter '--frce'"):
        run_task("--frce")
    with pytest.raises(LakehouseError, match="unknown model"):
        run_task("nope")
