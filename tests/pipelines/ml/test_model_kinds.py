"""A multiclass (iris) and a regression (diabetes) model end to end: train, register, batch
score, serve over real HTTP, land the prediction log in Bronze and monitor (performance,
drift, A/B), with a real MLflow registry and real Delta tables.

The two datasets from ``sklearn.datasets`` are landed as Gold tables of the demo project
(declared in an extra ``conf/kinds.yml``); every expected number is computed here from the
registered model (loaded by MLflow) and the tables.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from sklearn.datasets import load_diabetes, load_iris

from lakehouse.apps.serving.app import create_app
from lakehouse.apps.serving.server import running_server
from lakehouse.bundle.context import TaskContext
from lakehouse.config.ml import LOWER_IS_BETTER
from lakehouse.pipelines.bronze.ingest import ingest_source
from lakehouse.pipelines.ml.kinds import evaluation_metrics, probability_matrix
from lakehouse.pipelines.ml.registry import connect
from lakehouse.pipelines.ml.score import score_model
from lakehouse.pipelines.ml.train import MODEL_KIND_TAG, model_input, train_model
from lakehouse.pipelines.monitoring.monitor import MonitorResult, monitor_model
from tests.pipelines.ml.conftest import _context

KINDS_YML = """
catalog:
  name: ${var.catalog}
  storage_root: ${var.data_root}/tables
  schemas:
    gold:
      tables:
        iris:
          layer: gold
          description: sklearn's iris flowers, one row per flower
          keys: [flower_id]
          columns:
            - {name: flower_id, type: string, nullable: false}
            - {name: sepal_length, type: double}
            - {name: sepal_width, type: double}
            - {name: petal_length, type: double}
            - {name: petal_width, type: double}
            - {name: species, type: int}
        diabetes:
          layer: gold
          description: sklearn's diabetes patients (scaled features), one row per patient
          keys: [patient_id]
          columns:
            - {name: patient_id, type: string, nullable: false}
            - {name: age, type: double}
            - {name: sex, type: double}
            - {name: bmi, type: double}
            - {name: bp, type: double}
            - {name: s1, type: double}
            - {name: s2, type: double}
            - {name: s3, type: double}
            - {name: s4, type: double}
            - {name: s5, type: double}
            - {name: s6, type: double}
            - {name: progression, type: double}
models:
  iris:
    registered_name: iris_model
    task: classification
    training_set:
      labels: {table: "${var.catalog}.gold.iris", keys: [flower_id], label: species}
      features:
        - table: ${var.catalog}.gold.iris
          features: [sepal_length, sepal_width, petal_length, petal_width]
    split: {by: random, test_size: 0.3}
    candidates:
      logistic_regression: {params: {C: 1.0}}
      random_forest: {params: {n_estimators: 30, max_depth: 4}}
      gradient_boosting: {params: {n_estimators: 20, max_depth: 2}}
    promotion: {metric: f1_macro, thresholds: {accuracy: 0.8}}
    scoring:
      input: ${var.catalog}.gold.iris
      output: ${var.catalog}.gold.iris_predictions
  diabetes:
    registered_name: diabetes_model
    task: regression
    training_set:
      labels: {table: "${var.catalog}.gold.diabetes", keys: [patient_id], label: progression}
      features:
        - table: ${var.catalog}.gold.diabetes
          features: [age, sex, bmi, bp, s1, s2, s3, s4, s5, s6]
    split: {by: random, test_size: 0.25}
    candidates:
      linear_regression: {}
      random_forest: {params: {n_estimators: 30, max_depth: 5, min_samples_leaf: 5}}
      gradient_boosting: {params: {n_estimators: 40, max_depth: 2}}
    promotion: {thresholds: {r2: 0.2, rmse: 70}}
    scoring:
      input: ${var.catalog}.gold.diabetes
      output: ${var.catalog}.gold.diabetes_predictions
monitoring:
  models:
    iris:
      drift: {current: gold, min_rows: 50}
      performance: {min_labeled: 20, thresholds: {accuracy: 0.85}, metrics: [accuracy, f1_macro, roc_auc]}
      ab: {metric: accuracy, min_labeled: 5}
    diabetes:
      drift: {current: gold, min_rows: 50}
      performance: {min_labeled: 20, thresholds: {rmse: 65}}
      ab: {min_labeled: 5}
"""


@dataclass(frozen=True)
class Kind:
    """One model of conf/kinds.yml and its data."""

    model: str
    registered: str
    table: str
    key: str
    label: str
    frame: pd.DataFrame
    shifted: str  # the feature the drift test multiplies by 3

    @property
    def features(self) -> list[str]:
        return [c for c in self.frame.columns if c not in (self.key, self.label)]


def _iris() -> Kind:
    data = load_iris(as_frame=True)
    frame = data.data.set_axis(
        ["sepal_length", "sepal_width", "petal_length", "petal_width"], axis=1
    )
    frame.insert(0, "flower_id", [f"F{i:03d}" for i in range(len(frame))])
    frame["species"] = data.target.astype("int32")
    return Kind(
        "iris", "iris_model", "lakehouse.gold.iris", "flower_id", "species", frame, "petal_length"
    )


def _diabetes() -> Kind:
    data = load_diabetes(as_frame=True)
    frame = data.data.astype("float64")
    frame.insert(0, "patient_id", [f"P{i:03d}" for i in range(len(frame))])
    frame["progression"] = data.target.astype("float64")
    return Kind(
        "diabetes",
        "diabetes_model",
        "lakehouse.gold.diabetes",
        "patient_id",
        "progression",
        frame,
        "bmi",
    )


KINDS = {"iris": _iris(), "diabetes": _diabetes()}


class Project:
    """The demo project with conf/kinds.yml, the two Gold tables landed, and both models
    trained into this module's own MLflow."""

    def __init__(self, spark: SparkSession, root: Path, mlflow_dir: Path) -> None:
        (root / "conf" / "kinds.yml").write_text(KINDS_YML)
        self.spark = spark
        self.root = root
        self.overrides = {
            "data_root": str(root / "data"),
            "mlflow_tracking_uri": f"sqlite:///{mlflow_dir / 'mlflow.db'}",
            "monitoring_webhook_url": "",
        }
        ctx = self.context()
        for kind in KINDS.values():
            self.land(ctx, kind, kind.frame)
        self.results = {name: train_model(ctx, name) for name in KINDS}

    def context(self, **drift: str) -> TaskContext:
        ctx = _context(self.spark, self.root, self.overrides)
        for name, monitor in list(ctx.project.monitoring.models.items()):
            if name in KINDS and drift:
                update = monitor.drift.model_copy(update=drift)
                ctx.project.monitoring.models[name] = monitor.model_copy(update={"drift": update})
        return ctx

    @staticmethod
    def land(ctx: TaskContext, kind: Kind, frame: pd.DataFrame) -> None:
        df = ctx.spark.createDataFrame(frame)
        ctx.tables.evolve(kind.table, df.schema, step="test")
        ctx.tables.overwrite(kind.table, df)


@pytest.fixture(scope="module")
def project(
    spark: SparkSession,
    churn_project: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Project]:
    mp = pytest.MonkeyPatch()
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield Project(spark, churn_project, tmp_path_factory.mktemp("kinds-mlflow"))
    mp.undo()


def _champion(kind: Kind) -> Any:
    return mlflow.sklearn.load_model(f"models:/{kind.registered}@champion")


def _records(kind: Kind, frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {kind.key: str(row[kind.key]), **{f: float(row[f]) for f in kind.features}}
        for _, row in frame.iterrows()
    ]


# ---------------------------------------------------------------- training and registry


def test_multiclass_candidates_are_trained_and_promoted_on_macro_f1(project: Project) -> None:
    result = project.results["iris"]
    assert (result.version, result.promoted, sorted(result.aliases)) == (
        "1",
        True,
        ["challenger", "champion"],
    )
    assert set(result.candidates) == {"logistic_regression", "random_forest", "gradient_boosting"}
    best = max(result.candidates.values(), key=lambda m: m["f1_macro"])
    assert result.metrics["f1_macro"] == best["f1_macro"]
    for metrics in result.candidates.values():
        assert {"accuracy", "roc_auc", "precision_macro", "f1_weighted", "recall_weighted"} <= set(
            metrics
        )
        assert metrics["precision"] == metrics["precision_macro"]
        assert metrics["accuracy"] >= 0.85 and metrics["roc_auc"] >= 0.9
    client = connect(project.context().project)
    version = client.get_model_version("iris_model", "1")
    assert client.get_run(version.run_id).data.tags[MODEL_KIND_TAG] == "multiclass"
    assert result.note.startswith("promoted: no champion yet; f1_macro")


def test_regression_candidates_are_promoted_on_the_lowest_rmse(project: Project) -> None:
    result = project.results["diabetes"]
    assert (result.version, result.promoted) == ("1", True)
    assert set(result.candidates) == {"linear_regression", "random_forest", "gradient_boosting"}
    best = min(result.candidates.values(), key=lambda m: m["rmse"])
    assert result.metrics["rmse"] == best["rmse"]
    for metrics in result.candidates.values():
        assert {"rmse", "mae", "r2"} <= set(metrics) and "roc_auc" not in metrics
        assert 35 < metrics["mae"] < metrics["rmse"] < 70 and 0.2 < metrics["r2"] < 0.7
    client = connect(project.context().project)
    version = client.get_model_version("diabetes_model", "1")
    assert client.get_run(version.run_id).data.tags[MODEL_KIND_TAG] == "regression"
    assert result.note.startswith("promoted: no champion yet; rmse")


# ---------------------------------------------------------------- batch scoring


def _scored(project: Project, kind: Kind) -> pd.DataFrame:
    ctx = project.context()
    score_model(ctx, kind.model)
    table = f"lakehouse.gold.{kind.model}_predictions"
    return ctx.tables.read(table).toPandas().sort_values(kind.key).reset_index(drop=True)


def test_multiclass_scoring_writes_the_class_its_probability_and_every_class(
    project: Project,
) -> None:
    kind = KINDS["iris"]
    scored = _scored(project, kind)
    # the generated table declares the binary columns; probabilities is added by the first
    # multiclass scoring (schema evolution appends it)
    assert list(scored.columns) == [
        "flower_id",
        "prediction",
        "probability",
        "model_name",
        "model_version",
        "scored_at",
        "run_id",
        "probabilities",
    ]
    model = _champion(kind)
    x = model_input(kind.frame, kind.features, [])
    assert scored["prediction"].tolist() == model.predict(x).tolist()
    classes, matrix = probability_matrix(list(scored["probabilities"]))
    assert classes == [0, 1, 2]
    np.testing.assert_allclose(matrix, model.predict_proba(x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(scored["probability"], matrix.max(axis=1), rtol=0, atol=1e-12)
    assert set(scored["model_version"]) == {"1"}


def test_regression_scoring_writes_a_number_and_no_probability(project: Project) -> None:
    kind = KINDS["diabetes"]
    scored = _scored(project, kind)
    assert list(scored.columns) == [
        "patient_id",
        "prediction",
        "model_name",
        "model_version",
        "scored_at",
        "run_id",
    ]
    assert scored["prediction"].dtype == "float64"
    expected = _champion(kind).predict(model_input(kind.frame, kind.features, []))
    np.testing.assert_allclose(scored["prediction"], expected, rtol=1e-12, atol=0)


# ---------------------------------------------------------------- serving


def _serve(project: Project, kind: Kind, records: list[dict[str, Any]], log_dir: Path) -> Any:
    app = create_app(project.context().project, kind.model, log_dir=log_dir)
    with running_server(app) as url, httpx.Client(base_url=url) as http:
        answer = http.post("/predict", json={"records": records})
        one = http.post("/predict", json={"record": records[0]})
        features = [{k: v for k, v in r.items() if k != kind.key} for r in records[:5]]
        mlflow_answer = http.post("/invocations", json={"dataframe_records": features})
    # MLflow's scoring protocol answers the predictions alone, of the model's kind
    assert mlflow_answer.status_code == 200, mlflow_answer.text
    expected = [p["prediction"] for p in answer.json()["predictions"][:5]]
    assert mlflow_answer.json()["predictions"] == pytest.approx(expected, rel=1e-12)
    assert answer.status_code == 200, answer.text
    assert one.status_code == 200, one.text
    single, first = one.json()["predictions"][0], answer.json()["predictions"][0]
    assert (single["keys"], set(single)) == (first["keys"], set(first))
    assert single["prediction"] == pytest.approx(first["prediction"], rel=1e-9)
    return answer.json()


def _log_lines(directory: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def test_multiclass_serving_returns_every_class_probability(
    project: Project, tmp_path: Path
) -> None:
    kind = KINDS["iris"]
    rows = kind.frame.iloc[::5]
    body = _serve(project, kind, _records(kind, rows), tmp_path)
    model = _champion(kind)
    x = model_input(rows, kind.features, [])
    proba = model.predict_proba(x)
    got = body["predictions"]
    assert [list(p) for p in got[:1]] == [["prediction", "probability", "probabilities", "keys"]]
    assert [p["prediction"] for p in got] == model.predict(x).tolist()
    assert [p["keys"] for p in got] == [{"flower_id": k} for k in rows["flower_id"]]
    for p, expected in zip(got, proba, strict=True):
        assert list(p["probabilities"]) == ["0", "1", "2"]
        np.testing.assert_allclose(list(p["probabilities"].values()), expected, atol=1e-12)
        assert p["probability"] == pytest.approx(expected.max(), abs=1e-12)
    logged = _log_lines(tmp_path)
    assert len(logged) == len(rows) + 1 + 5  # /predict batch, one record, /invocations
    assert [
        {k: line[k] for k in ("prediction", "probability", "probabilities", "keys")}
        for line in logged[: len(rows)]
    ] == got


def test_regression_serving_returns_the_number(project: Project, tmp_path: Path) -> None:
    kind = KINDS["diabetes"]
    rows = kind.frame.iloc[::20]
    body = _serve(project, kind, _records(kind, rows), tmp_path)
    expected = _champion(kind).predict(model_input(rows, kind.features, []))
    got = body["predictions"]
    assert {tuple(p) for p in got} == {("prediction", "keys")}
    np.testing.assert_allclose([p["prediction"] for p in got], expected, rtol=1e-12)
    logged = _log_lines(tmp_path)
    assert "probability" not in logged[0] and "probabilities" not in logged[0]
    assert [line["prediction"] for line in logged[: len(rows)]] == [p["prediction"] for p in got]


# ---------------------------------------------------------------- monitoring


def _rows(result: MonitorResult, kind: str) -> list[Any]:
    return [r for r in result.rows if r.kind == kind]


def _expected_performance(kind: Kind, scored: pd.DataFrame, task_kind: str) -> dict[str, float]:
    labelled = scored.merge(kind.frame[[kind.key, kind.label]], on=kind.key)
    if task_kind == "regression":
        return evaluation_metrics("regression", labelled[kind.label], labelled["prediction"])
    classes, matrix = probability_matrix(list(labelled["probabilities"]))
    return evaluation_metrics(
        "multiclass", labelled[kind.label], labelled["prediction"], matrix, classes
    )


@pytest.mark.parametrize(
    ("name", "task_kind", "metrics"),
    [
        ("iris", "multiclass", ["accuracy", "f1_macro", "roc_auc"]),
        ("diabetes", "regression", ["rmse", "mae", "r2"]),
    ],
)
def test_monitoring_judges_each_kind_and_sees_a_shifted_feature(
    project: Project, tmp_path: Path, name: str, task_kind: str, metrics: list[str]
) -> None:
    kind = KINDS[name]
    ctx = project.context()
    client = connect(ctx.project)
    training = {
        k: float(v)
        for k, v in client.get_run(
            client.get_model_version(kind.registered, "1").run_id
        ).data.metrics.items()
    }
    monitor = ctx.project.monitoring.models[name].performance
    limits = dict(monitor.thresholds)
    drops = monitor.max_drop_for("regression" if task_kind == "regression" else "classification")

    def judged(result: MonitorResult, scored: pd.DataFrame) -> dict[str, Any]:
        """The latest scoring run's rows, each value and alert checked against this test's
        own computation (the bound in the metric's direction)."""
        performance = _rows(result, "performance")
        latest = max(r.details["table_version"] for r in performance)
        rows = {r.metric: r for r in performance if r.details["table_version"] == latest}
        assert set(rows) == {"labeled_rows", *metrics}
        assert rows["labeled_rows"].value == len(kind.frame)
        expected = _expected_performance(kind, scored, task_kind)
        for metric in metrics:
            row = rows[metric]
            assert row.value == pytest.approx(expected[metric], rel=1e-9), metric
            bounds = [limits[metric]] if metric in limits else []
            if metric in drops:
                step = drops[metric] if metric in LOWER_IS_BETTER else -drops[metric]
                bounds.append(training[metric] + step)
            if not bounds:
                assert (row.threshold, row.alert) == (None, False)
                continue
            bound = min(bounds) if metric in LOWER_IS_BETTER else max(bounds)
            worse = row.value > bound if metric in LOWER_IS_BETTER else row.value < bound
            assert (row.threshold, row.alert) == (pytest.approx(bound), worse), metric
        return rows

    # as scored: no drift against the training-time table
    scored = _scored(project, kind)
    result = monitor_model(project.context(), name)
    before = judged(result, scored)
    drift = _rows(result, "drift")
    assert len(drift) == 2 * len(kind.features) and not [r for r in drift if r.alert]
    headline = "accuracy" if task_kind == "multiclass" else "rmse"
    assert not before[headline].alert  # within the configured limit (0.85 / 65)

    # one feature tripled: its drift alerts; the metrics worsen and alert in their direction
    shifted = kind.frame.assign(**{kind.shifted: kind.frame[kind.shifted] * 3})
    Project.land(ctx, kind, shifted)
    scored = _scored(project, kind)
    result = monitor_model(project.context(), name)
    assert {r.subject for r in _rows(result, "drift") if r.alert} == {kind.shifted}
    after = judged(result, scored)
    for metric in metrics:
        gain = after[metric].value - before[metric].value
        assert gain > 0 if metric in LOWER_IS_BETTER else gain < 0, metric
    alerting = {m for m in metrics if after[m].alert}
    assert alerting & ({"accuracy"} if task_kind == "multiclass" else {"rmse", "r2"})
    Project.land(ctx, kind, kind.frame)  # back as trained, for the next test


@pytest.mark.parametrize("name", ["iris", "diabetes"])
def test_served_predictions_are_monitored_per_kind(project: Project, name: str) -> None:
    """Predictions served over HTTP land in Bronze; drift and A/B read them back."""
    kind = KINDS[name]
    ctx = project.context()
    landing = ctx.project.data_root / "landing" / "predictions"
    body = _serve(project, kind, _records(kind, kind.frame), landing)
    ingest_source(ctx, "predictions_log")
    as_of = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=1)
    result = monitor_model(project.context(current="served"), name, as_of=as_of)
    drift = _rows(result, "drift")
    served_rows = len(kind.frame) + 1 + 5  # /predict batch, one record, /invocations (no keys)
    assert {r.current_rows for r in drift} == {served_rows}
    assert not [r for r in drift if r.alert]
    ab = {r.metric: r.value for r in _rows(result, "ab") if r.subject == "champion v1"}
    assert ab["records"] == served_rows and ab["labeled_rows"] == len(kind.frame) + 1
    served = pd.DataFrame(body["predictions"])
    served[kind.key] = [k[kind.key] for k in served["keys"]]
    labelled = served.merge(kind.frame[[kind.key, kind.label]], on=kind.key)
    first = labelled.iloc[:1].copy()  # the single-record request of _serve
    labelled = pd.concat([labelled, first], ignore_index=True)
    if name == "iris":
        classes, matrix = probability_matrix(list(labelled["probabilities"]))
        expected = evaluation_metrics(
            "multiclass", labelled[kind.label], labelled["prediction"], matrix, classes
        )
        names = ["roc_auc", "accuracy", "precision", "recall", "f1"]
    else:
        expected = evaluation_metrics("regression", labelled[kind.label], labelled["prediction"])
        names = ["rmse", "mae", "r2"]
    for metric in names:
        assert ab[metric] == pytest.approx(expected[metric], rel=1e-9), metric
    assert not [m for m in ("roc_auc", "rmse") if m in ab and m not in names]
    assert all(not math.isnan(ab[m]) for m in names)
