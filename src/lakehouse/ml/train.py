"""Train a scikit-learn model on a Gold feature table, log it to MLflow, register it.

Tracking defaults to sqlite under the project's data directory (no server needed);
``MLFLOW_TRACKING_URI`` or the bundle variable ``mlflow_tracking_uri`` point elsewhere.
A model version carries a fingerprint of its training data and settings: when neither
changed, training is skipped and the existing version is reported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from lakehouse.bundle.context import ModelResult, TaskContext
from lakehouse.config.loader import Project
from lakehouse.config.models import ModelSpec

log = logging.getLogger(__name__)

CHAMPION = "champion"
FINGERPRINT_TAG = "lakehouse.training_fingerprint"
NUMERIC_TYPES = (T.NumericType, T.BooleanType)


@dataclass(frozen=True)
class TrainingData:
    features: pd.DataFrame
    label: pd.Series
    numeric: list[str]
    categorical: list[str]
    fingerprint: str


def tracking_uri(project: Project) -> str:
    """``MLFLOW_TRACKING_URI``, else the bundle variable, else sqlite under the data root."""
    configured = os.environ.get("MLFLOW_TRACKING_URI") or str(
        project.variables.get("mlflow_tracking_uri") or ""
    )
    if configured:
        return configured
    db = project.data_root / "mlflow" / "mlflow.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"


def artifact_root(project: Project) -> str:
    path = project.data_root / "mlflow" / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve().as_uri()


def training_data(features: DataFrame, spec: ModelSpec) -> TrainingData:
    """Collect the model's columns to pandas (sorted by key) and fingerprint them."""
    kinds = {f.name: f.dataType for f in features.schema.fields}
    numeric = [c for c in spec.features if isinstance(kinds[c], NUMERIC_TYPES)]
    categorical = [c for c in spec.features if c not in numeric]
    pdf: Any = features.select(*spec.key, *spec.features, spec.label).toPandas()
    pdf = pdf.sort_values(spec.key, kind="stable").reset_index(drop=True)
    for col in numeric:
        pdf[col] = pd.to_numeric(pdf[col]).astype("float64")
    for col in categorical:
        pdf[col] = pdf[col].astype("string").fillna("__missing__").astype(object)
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(pdf, index=False).to_numpy().tobytes())
    digest.update(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode())
    return TrainingData(
        features=pdf[spec.features],
        label=pdf[spec.label].astype(int),
        numeric=numeric,
        categorical=categorical,
        fingerprint=digest.hexdigest()[:32],
    )


def build_estimator(spec: ModelSpec, numeric: list[str], categorical: list[str]) -> Any:
    """A scikit-learn Pipeline: scaling + one-hot encoding, then the configured classifier."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    params = dict(spec.params)
    classifier: Any
    if spec.estimator == "logistic_regression":
        classifier = LogisticRegression(random_state=spec.seed, **{"max_iter": 1000, **params})
    elif spec.estimator == "random_forest":
        classifier = RandomForestClassifier(random_state=spec.seed, **params)
    else:
        classifier = GradientBoostingClassifier(random_state=spec.seed, **params)
    return Pipeline([("preprocess", pre), ("classifier", classifier)])


def evaluate(model: Any, features: pd.DataFrame, label: pd.Series) -> dict[str, float]:
    """Accuracy, precision, recall, F1, ROC AUC and prediction time on held-out rows."""
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    started = time.perf_counter()
    predicted = model.predict(features)
    probability = model.predict_proba(features)[:, 1]
    elapsed = time.perf_counter() - started
    return {
        "accuracy": float(accuracy_score(label, predicted)),
        "precision": float(precision_score(label, predicted, zero_division=0)),
        "recall": float(recall_score(label, predicted, zero_division=0)),
        "f1": float(f1_score(label, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(label, probability)),
        "prediction_seconds": elapsed,
    }


def train_models(ctx: TaskContext) -> None:
    """Train and register every configured model."""
    for name in ctx.project.models:
        ctx.report.models.append(train_model(ctx, name))


def _quiet_mlflow() -> None:
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")


def train_model(ctx: TaskContext, name: str) -> ModelResult:
    """Train the model ``name``; register a new version as champion unless nothing changed."""
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient
    from sklearn.model_selection import train_test_split

    _quiet_mlflow()
    spec = ctx.project.models[name]
    uri = tracking_uri(ctx.project)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    feature_version = ctx.tables.version(spec.feature_table)
    data = training_data(ctx.tables.read(spec.feature_table), spec)
    existing = _version_with_fingerprint(client, spec.registered_name, data.fingerprint)
    if existing is not None:
        aliases = list(existing.aliases)
        if CHAMPION not in aliases:
            client.set_registered_model_alias(spec.registered_name, CHAMPION, existing.version)
            aliases.append(CHAMPION)
        run = client.get_run(existing.run_id)
        return ModelResult(
            name=spec.registered_name,
            version=str(existing.version),
            aliases=sorted(aliases),
            metrics={k: float(v) for k, v in run.data.metrics.items()},
            retrained=False,
            note="training data and settings unchanged: not retrained",
        )

    x_train, x_test, y_train, y_test = train_test_split(
        data.features,
        data.label,
        test_size=spec.test_size,
        random_state=spec.seed,
        stratify=data.label,
    )
    experiment_name = spec.experiment or f"/{ctx.project.name}/{name}"
    if mlflow.get_experiment_by_name(experiment_name) is None:
        mlflow.create_experiment(experiment_name, artifact_location=artifact_root(ctx.project))
    mlflow.set_experiment(experiment_name)

    model = build_estimator(spec, data.numeric, data.categorical)
    with mlflow.start_run(run_name=f"{name}-{spec.estimator}") as run:
        started = time.perf_counter()
        model.fit(x_train, y_train)
        train_seconds = time.perf_counter() - started
        metrics = {**evaluate(model, x_test, y_test), "training_seconds": train_seconds}
        mlflow.log_params(
            {
                "estimator": spec.estimator,
                "seed": spec.seed,
                "test_size": spec.test_size,
                **spec.params,
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.set_tags(
            {
                "lakehouse.run_id": ctx.run_id,
                "lakehouse.feature_table": spec.feature_table,
                "lakehouse.feature_table_version": str(feature_version),
                FINGERPRINT_TAG: data.fingerprint,
            }
        )
        signature = infer_signature(x_train, model.predict(x_train))
        # skops (not pickle) format; the types this model needs are listed as trusted.
        import skops.io

        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
        info = mlflow.sklearn.log_model(
            sk_model=model,
            name="model",
            signature=signature,
            input_example=x_train.head(3),
            pip_requirements=_pip_requirements(),
            skops_trusted_types=trusted,
            registered_model_name=spec.registered_name,
        )
    version = str(info.registered_model_version)
    client.set_model_version_tag(spec.registered_name, version, FINGERPRINT_TAG, data.fingerprint)
    client.set_registered_model_alias(spec.registered_name, CHAMPION, version)
    log.info(
        "%s: registered version %s as @%s (run %s)",
        spec.registered_name,
        version,
        CHAMPION,
        run.info.run_id,
    )
    return ModelResult(
        name=spec.registered_name,
        version=version,
        aliases=[CHAMPION],
        metrics=metrics,
        retrained=True,
    )


def _version_with_fingerprint(client: Any, registered_name: str, fingerprint: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{registered_name}'")
    except MlflowException:
        return None
    matches = [v for v in versions if v.tags.get(FINGERPRINT_TAG) == fingerprint]
    return max(matches, key=lambda v: int(v.version)) if matches else None


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [
        f"{pkg}=={version(pkg)}" for pkg in ("scikit-learn", "skops", "pandas", "numpy", "mlflow")
    ]


def model_uri(registered_name: str, alias: str = CHAMPION) -> str:
    return f"models:/{registered_name}@{alias}"
