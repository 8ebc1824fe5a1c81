"""A demo project with Silver/Gold built once per module and a registry with two versions.

v1 (logistic regression) is ``@champion``; v2 (a one-split tree, clearly different
predictions) is ``@challenger``. Tests that move an alias put it back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession

from lakehouse.bundle.context import TaskContext
from lakehouse.config.ml import CandidateSpec, PromotionSpec
from lakehouse.config.project import Project
from lakehouse.pipelines.ml.registry import connect
from lakehouse.pipelines.ml.train import model_input, train_model
from tests.pipelines.ml.conftest import _context, churn_project  # noqa: F401  (fixture)

MODEL = "churn"
NAME = "churn_model"
LENIENT = PromotionSpec(metric="roc_auc", min_improvement=0.005, thresholds={"roc_auc": 0.5})
QUICK = {"logistic_regression": CandidateSpec(params={"C": 1.0})}
WEAK = {
    "weak": CandidateSpec(estimator="random_forest", params={"n_estimators": 1, "max_depth": 1})
}
CATEGORICAL = ["region", "plan"]


@dataclass
class Registry:
    project: Project
    client: MlflowClient
    features: list[str]
    rows: pd.DataFrame  # sample rows of gold.customer_features
    context: TaskContext  # the task context that trained the versions (batch scoring)

    def records(self, rows: pd.DataFrame | None = None) -> list[dict[str, Any]]:
        """Rows as JSON records: numbers as floats, categories as strings, missing as null."""
        out = []
        for _, row in (self.rows if rows is None else rows).iterrows():
            record: dict[str, Any] = {}
            for col in self.features:
                value = row[col]
                if pd.isna(value):
                    record[col] = None
                else:
                    record[col] = str(value) if col in CATEGORICAL else float(value)
            out.append(record)
        return out

    def expected(
        self, version: str, rows: pd.DataFrame | None = None
    ) -> tuple[list[int], np.ndarray]:
        """What MLflow's own loader gives for these rows with this version (or alias)."""
        ref = f"@{version}" if not version.isdigit() else f"/{version}"
        model = mlflow.pyfunc.load_model(f"models:/{NAME}{ref}")
        x = model_input(self.rows if rows is None else rows, self.features, CATEGORICAL)
        predicted = [int(p) for p in model.predict(x)]
        return predicted, model.get_raw_model().predict_proba(x)[:, 1]

    def set_champion(self, version: str) -> None:
        self.client.set_registered_model_alias(NAME, "champion", version)


@pytest.fixture(scope="module")
def registry(
    spark: SparkSession,
    churn_project: Path,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Registry]:
    mlflow_dir = tmp_path_factory.mktemp("serving-mlflow")
    overrides = {
        "data_root": str(churn_project / "data"),
        "mlflow_tracking_uri": f"sqlite:///{mlflow_dir / 'mlflow.db'}",
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)

        def train(candidates: dict[str, CandidateSpec]) -> Any:
            ctx = _context(spark, churn_project, overrides)
            spec = ctx.project.models[MODEL]
            ctx.project.models[MODEL] = spec.model_copy(
                update={"candidates": candidates, "promotion": LENIENT}
            )
            handles = ctx.project.model_handles
            handles[MODEL] = dataclasses.replace(handles[MODEL], spec=ctx.project.models[MODEL])
            return train_model(ctx, MODEL), ctx

        first, ctx = train(QUICK)
        second, _ = train(WEAK)
        assert (first.version, first.promoted) == ("1", True)
        assert (second.version, second.promoted) == ("2", False)
        features = ctx.project.models[MODEL].features
        table = ctx.tables.read("lakehouse.gold.customer_features")
        every = table.orderBy("customer_id", "feature_ts").toPandas()
        registry = Registry(ctx.project, connect(ctx.project), features, every, ctx)
        # a sample in which the champion predicts both classes (churners are a minority)
        predicted, _ = registry.expected("1")
        positive = every[np.array(predicted) == 1]
        assert len(positive) >= 15
        registry.rows = pd.concat([every.head(45), positive.head(15)]).reset_index(drop=True)
        yield registry
