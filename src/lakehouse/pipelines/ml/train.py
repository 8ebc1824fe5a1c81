"""Train the configured candidates on a point-in-time training set; register and promote.

A model's ``task`` picks the estimators: classifiers (binary or multiclass, as the labels
have two classes or more) or regressors; its metrics are those of its kind (see
:mod:`lakehouse.pipelines.ml.kinds`), and the promotion metric is compared in its direction
(lower rmse and mae are better).

``train_model`` builds the training set (labels + features as of the label time, every
input table pinned to one Delta version), holds out the latest label times (or a seeded
random split), trains every candidate as a scikit-learn Pipeline, logs each as an MLflow run
nested under one parent run, registers the best as a new version with alias
``@challenger``, and moves ``@champion`` to it only when it beats the current champion (re-
evaluated on the same holdout) by the configured margin and passes the absolute thresholds.
The decision and its reason are logged on the parent run and on the new version.

A version carries a fingerprint of its training data and settings: when neither changed,
training is skipped and the existing version is reported (``force`` retrains anyway).
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pyspark.sql import types as T

from lakehouse.bundle.context import ModelResult, TaskContext
from lakehouse.config.ml import ModelSpec, PromotionSpec, SplitSpec
from lakehouse.core.errors import LakehouseError, TaskError
from lakehouse.core.params import TaskParams
from lakehouse.pipelines.ml.kinds import (
    evaluation_metrics,
    improvement,
    lower_is_better,
    model_kind,
    model_outputs,
    worse_than,
)
from lakehouse.pipelines.ml.registry import (
    CHALLENGER,
    CHAMPION,
    aliases_of,
    artifact_root,
    connect,
    model_uri,
    tracking_uri,
    version_by_alias,
)
from lakehouse.pipelines.ml.training_set import TrainingSet, build_training_set
from lakehouse.runtime.crash import crash_point

log = logging.getLogger(__name__)

FINGERPRINT_TAG = "lakehouse.training_fingerprint"
PROMOTION_TAG = "lakehouse.promotion"
PROMOTE_TAG = "lakehouse.promote"
"""On a version: ``true``/``false``, whether its training run decided to make it champion."""
MODEL_KIND_TAG = "lakehouse.model_kind"
"""On a candidate run: binary, multiclass or regression."""
ALIASES_SET_TAG = "lakehouse.aliases_set"
"""On a version: present once its aliases were set; absent = registration was interrupted."""
NUMERIC_TYPES = (T.NumericType, T.BooleanType)


@dataclass(frozen=True)
class TrainingData:
    """The training set in pandas, sorted (by label time, then keys), with its fingerprint."""

    frame: pd.DataFrame
    features: list[str]
    numeric: list[str]
    categorical: list[str]
    label: str
    timestamp: str | None
    fingerprint: str
    task: str = "classification"

    @property
    def x(self) -> pd.DataFrame:
        return model_input(self.frame, self.features, self.categorical)

    @property
    def y(self) -> pd.Series:
        """The labels: integer classes, or numbers for regression."""
        return self.frame[self.label].astype("float64" if self.task == "regression" else int)


def feature_kinds(schema: T.StructType, features: list[str]) -> tuple[list[str], list[str]]:
    """Split features into numeric and categorical by their Spark types."""
    kinds = {f.name: f.dataType for f in schema.fields}
    numeric = [c for c in features if isinstance(kinds[c], NUMERIC_TYPES)]
    return numeric, [c for c in features if c not in numeric]


def model_input(pdf: pd.DataFrame, features: list[str], categorical: list[str]) -> pd.DataFrame:
    """The model's input columns in ``features`` order with the dtypes it was trained on.

    Categorical columns are objects with NaN for missing, all others float64. Training,
    batch scoring and serving all go through this function.
    """
    out = pd.DataFrame(index=pdf.index)
    for col in features:
        if col in categorical:
            values = pdf[col].astype(object)
            out[col] = values.where(values.notna(), np.nan)
        else:
            out[col] = pd.to_numeric(pdf[col], errors="coerce").astype("float64")
    return out


FINGERPRINT_DIGITS = 12


def _fingerprint_view(pdf: Any) -> Any:
    """The frame with doubles rounded to 12 significant digits: the same data summed in
    another order (another engine, another partitioning) differs in the last bits of a
    double, and that must not count as new training data."""
    out = pdf.copy()
    for column in out.select_dtypes(include="floating").columns:
        out[column] = out[column].map(
            lambda v: float(f"{v:.{FINGERPRINT_DIGITS}g}") if pd.notna(v) else v
        )
    return out


def training_data(training_set: TrainingSet, spec: ModelSpec) -> TrainingData:
    """Collect the training set to pandas, ordered deterministically, and fingerprint it."""
    features = spec.features
    numeric, categorical = feature_kinds(training_set.frame.schema, features)
    order = [*([training_set.timestamp] if training_set.timestamp else []), *training_set.keys]
    pdf: Any = training_set.frame.toPandas()
    missing_label = pdf[training_set.label].isna()
    if missing_label.any():
        raise LakehouseError(
            f"{spec.training_set.labels.table}: {int(missing_label.sum())} label rows have no "
            f"value for {spec.training_set.labels.label!r}; filter them with 'where'"
        )
    pdf = pdf.sort_values(order, kind="stable").reset_index(drop=True)
    digest = hashlib.sha256()
    digest.update(
        pd.util.hash_pandas_object(_fingerprint_view(pdf), index=False).to_numpy().tobytes()
    )
    digest.update(json.dumps(fingerprint_settings(spec), sort_keys=True).encode())
    return TrainingData(
        frame=pdf,
        features=features,
        numeric=numeric,
        categorical=categorical,
        label=training_set.label,
        timestamp=training_set.timestamp,
        fingerprint=digest.hexdigest()[:32],
        task=spec.task,
    )


def fingerprint_settings(spec: ModelSpec) -> dict[str, Any]:
    """The model's settings as fingerprinted: the default task is left out, so a model
    trained before ``task`` existed keeps its fingerprint (and is not retrained)."""
    settings = spec.model_dump(mode="json")
    if settings.get("task") == "classification":
        del settings["task"]
    return settings


def holdout_split(data: TrainingData, split: SplitSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions for training and holdout.

    ``time``: the rows with the latest label times are held out (the frame is sorted by
    label time), so the model is judged on examples from after everything it learned from.
    ``random``: a split with the model's seed, stratified by class for classification.
    """
    n = len(data.frame)
    n_test = max(1, round(n * split.test_size))
    if n - n_test < 2:
        raise LakehouseError(f"training set has {n} rows: too few to hold any out")
    positions = np.arange(n)
    if split.by == "time":
        return positions[: n - n_test], positions[n - n_test :]
    from sklearn.model_selection import train_test_split

    stratify = None if data.task == "regression" else data.y.to_numpy()
    train, test = train_test_split(
        positions, test_size=n_test, random_state=seed, stratify=stratify
    )
    return np.sort(train), np.sort(test)


def build_estimator(
    estimator: str,
    params: dict[str, Any],
    seed: int,
    numeric: list[str],
    categorical: list[str],
    task: str = "classification",
) -> Any:
    """A scikit-learn Pipeline: impute + scale numbers, impute + one-hot categories, then the
    estimator (step ``classifier``, or ``regressor`` for ``task: regression``)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric_steps = Pipeline(
        [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
    )
    categorical_steps = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
            ("encode", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    pre = ColumnTransformer(
        [("numeric", numeric_steps, numeric), ("categorical", categorical_steps, categorical)]
    )
    if task == "regression":
        return Pipeline([("preprocess", pre), ("regressor", _regressor(estimator, params, seed))])
    return Pipeline([("preprocess", pre), ("classifier", _classifier(estimator, params, seed))])


def _classifier(estimator: str, params: dict[str, Any], seed: int) -> Any:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    if estimator == "logistic_regression":
        return LogisticRegression(random_state=seed, **{"max_iter": 1000, **params})
    if estimator == "random_forest":
        return RandomForestClassifier(random_state=seed, **params)
    if estimator == "gradient_boosting":
        return GradientBoostingClassifier(random_state=seed, **params)
    raise LakehouseError(f"unknown estimator {estimator!r} (a classifier)")


def _regressor(estimator: str, params: dict[str, Any], seed: int) -> Any:
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import LinearRegression

    if estimator == "linear_regression":
        return LinearRegression(**params)
    if estimator == "random_forest":
        return RandomForestRegressor(random_state=seed, **params)
    if estimator == "gradient_boosting":
        return GradientBoostingRegressor(random_state=seed, **params)
    raise LakehouseError(f"unknown estimator {estimator!r} (a regressor)")


def evaluate(model: Any, features: pd.DataFrame, label: pd.Series) -> dict[str, float]:
    """The metrics of the model's kind (see :mod:`lakehouse.pipelines.ml.kinds`) on held-out
    rows, and the prediction time."""
    started = time.perf_counter()
    outputs = model_outputs(model, features)
    elapsed = time.perf_counter() - started
    score = outputs.matrix if outputs.kind == "multiclass" else outputs.probability
    classes = list(model.classes_) if outputs.kind == "multiclass" else None
    metrics = evaluation_metrics(outputs.kind, label, outputs.prediction, score, classes)
    return {**metrics, "prediction_seconds": elapsed}


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide_promotion(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    rule: PromotionSpec,
    champion_version: str | None = None,
) -> Decision:
    """Whether the challenger becomes champion, and why (in words a person can act on)."""
    metric = rule.metric
    failing = [
        f"{name} {value:.4f} {'>' if lower_is_better(name) else '<'} {limit:.4f}"
        for name, limit in sorted(rule.thresholds.items())
        if np.isnan(value := challenger.get(name, float("nan"))) or worse_than(name, value, limit)
    ]
    if failing:
        return Decision(False, "below the threshold: " + ", ".join(failing))
    if champion is None:
        return Decision(True, f"no champion yet; {metric} {challenger[metric]:.4f}")
    worst = float("inf") if lower_is_better(metric) else float("-inf")
    gain = improvement(metric, challenger[metric], champion.get(metric, worst))
    versus = f"champion v{champion_version}" if champion_version else "champion"
    detail = (
        f"{metric} {challenger[metric]:.4f} vs {versus} {champion.get(metric, float('nan')):.4f}"
    )
    if gain >= rule.min_improvement:
        return Decision(True, f"{detail}: +{gain:.4f} >= margin {rule.min_improvement}")
    return Decision(False, f"{detail}: {gain:+.4f} < margin {rule.min_improvement}")


@dataclass
class Candidate:
    name: str
    estimator: str
    model: Any
    metrics: dict[str, float]
    run_id: str = ""
    model_uri: str = ""
    params: dict[str, Any] = field(default_factory=dict)


def train_candidates(data: TrainingData, spec: ModelSpec) -> tuple[list[Candidate], np.ndarray]:
    """Fit and evaluate every candidate on the same split (no MLflow involved)."""
    train_rows, test_rows = holdout_split(data, spec.split, spec.seed)
    x, y = data.x, data.y
    x_train, y_train = x.iloc[train_rows], y.iloc[train_rows]
    x_test, y_test = x.iloc[test_rows], y.iloc[test_rows]
    if spec.task == "classification" and y_train.nunique() < 2:
        raise LakehouseError("the training rows hold only one class; nothing to learn")
    out = []
    for name, candidate in spec.candidates.items():
        estimator = spec.estimator_of(name)
        model = build_estimator(
            estimator, candidate.params, spec.seed, data.numeric, data.categorical, spec.task
        )
        started = time.perf_counter()
        model.fit(x_train, y_train)
        seconds = time.perf_counter() - started
        metrics = {**evaluate(model, x_test, y_test), "training_seconds": seconds}
        out.append(Candidate(name, estimator, model, metrics, params=dict(candidate.params)))
    return out, test_rows


def best_candidate(candidates: list[Candidate], metric: str) -> Candidate:
    """The best ``metric`` (the highest, the lowest for rmse and mae; NaN counts as worst);
    ties go to the first configured."""
    sign = -1.0 if lower_is_better(metric) else 1.0

    def score(c: Candidate) -> float:
        value = c.metrics.get(metric, float("nan"))
        return float("-inf") if np.isnan(value) else sign * value

    return max(candidates, key=score)


class TrainParams(TaskParams):
    """``[MODEL]... [--force]``: the models to train (default: all); retrain when unchanged."""

    positional: ClassVar[str | None] = "models"
    models: tuple[str, ...] = ()
    force: bool = False


def train_models(ctx: TaskContext) -> None:
    """Task: train and register every configured model (or those named; ``--force`` retrains)."""
    params = TrainParams.parse(ctx.parameters, task=ctx.task_key)
    names = params.models or list(ctx.project.models)
    unknown = [n for n in names if n not in ctx.project.models]
    if unknown:
        raise TaskError(
            f"unknown model(s): {', '.join(unknown)} (configured: {', '.join(ctx.project.models)})"
        )
    for name in names:
        ctx.report.models.append(train_model(ctx, name, force=params.force))


def train_model(ctx: TaskContext, name: str, *, force: bool = False) -> ModelResult:
    """Train model ``name``'s candidates; register the best; apply the promotion rule."""
    if name not in ctx.project.models:
        known = ", ".join(sorted(ctx.project.models)) or "none"
        raise LakehouseError(f"no model {name!r} in conf/ (known: {known})")
    model = ctx.project.model_handle(name)
    spec = model.spec
    client = connect(ctx.project)
    training_set = build_training_set(ctx.tables, model)
    data = training_data(training_set, spec)
    existing = None if force else _version_with_fingerprint(client, spec, data.fingerprint)
    if existing is not None:
        completed = _complete_interrupted_promotion(client, spec, existing)
        return _unchanged_result(client, spec, existing, completed)

    candidates, test_rows = train_candidates(data, spec)
    best = best_candidate(candidates, spec.promotion.metric)
    decision = _promotion_against_champion(client, spec, best, data, test_rows)
    _set_experiment(ctx, spec, name)
    version, run_id = _log_and_register(
        ctx, name, spec, client, training_set, data, candidates, test_rows, best, decision
    )
    aliases = [CHALLENGER, *([CHAMPION] if decision.promote else [])]
    log.info(
        "%s: v%s from %s (run %s); %s: %s",
        spec.registered_name,
        version,
        best.name,
        run_id,
        "promoted" if decision.promote else "champion kept",
        decision.reason,
    )
    return ModelResult(
        name=spec.registered_name,
        version=version,
        aliases=sorted(aliases),
        metrics=best.metrics,
        retrained=True,
        note=("promoted: " if decision.promote else "champion kept: ") + decision.reason,
        best=best.name,
        promoted=decision.promote,
        candidates={c.name: c.metrics for c in candidates},
    )


def _unchanged_result(
    client: Any, spec: ModelSpec, existing: Any, completed: list[str]
) -> ModelResult:
    """The result for a registered version trained on the same data and settings."""
    run = client.get_run(existing.run_id)
    note = "training data and settings unchanged: not retrained"
    if completed:
        note += f"; completed its interrupted registration (set @{', @'.join(completed)})"
    return ModelResult(
        name=spec.registered_name,
        version=str(existing.version),
        aliases=aliases_of(client, spec.registered_name, str(existing.version)),
        metrics={k: float(v) for k, v in run.data.metrics.items()},
        retrained=False,
        note=note,
    )


def _complete_interrupted_promotion(client: Any, spec: ModelSpec, existing: Any) -> list[str]:
    """Set the aliases a version's training run decided on but did not live to set.

    A run killed between registering a version and moving its aliases leaves a version
    with this data's fingerprint and no aliases; re-running (same data) finishes that
    promotion instead of skipping training with no champion or registering a duplicate.
    An alias already on a newer version is left there. Returns the aliases set.
    """
    tags = existing.tags
    if PROMOTE_TAG not in tags or ALIASES_SET_TAG in tags:
        return []  # complete (or registered before these tags existed)
    name, version = spec.registered_name, str(existing.version)
    wanted = [CHALLENGER, *([CHAMPION] if tags[PROMOTE_TAG] == "true" else [])]
    done = []
    for alias in wanted:
        current = version_by_alias(client, name, alias)
        if current is None or int(current.version) < int(version):
            client.set_registered_model_alias(name, alias, version)
            done.append(alias)
    client.set_model_version_tag(name, version, ALIASES_SET_TAG, "true")
    log.warning("%s v%s: completed an interrupted registration (%s)", name, version, done)
    return done


def _promotion_against_champion(
    client: Any, spec: ModelSpec, best: Candidate, data: TrainingData, test_rows: np.ndarray
) -> Decision:
    """The promotion rule applied to the best candidate and the champion on the same holdout."""
    x_test, y_test = data.x.iloc[test_rows], data.y.iloc[test_rows]
    champion = version_by_alias(client, spec.registered_name, CHAMPION)
    champion_metrics = _champion_on_holdout(client, spec, champion, x_test, y_test)
    return decide_promotion(
        best.metrics,
        champion_metrics,
        spec.promotion,
        str(champion.version) if champion is not None else None,
    )


def _log_and_register(
    ctx: TaskContext,
    name: str,
    spec: ModelSpec,
    client: Any,
    training_set: TrainingSet,
    data: TrainingData,
    candidates: list[Candidate],
    test_rows: np.ndarray,
    best: Candidate,
    decision: Decision,
) -> tuple[str, str]:
    """Log the candidates in one MLflow run, register the best, set its aliases.

    Returns the registered version and the run's id.
    """
    import mlflow

    tags = _run_tags(ctx, spec, training_set, data)
    locations = training_set.input_locations
    with mlflow.start_run(run_name=f"{name}-{ctx.run_id}", tags=tags) as parent:
        mlflow.log_params(
            {"split": spec.split.by, "test_size": spec.split.test_size, "seed": spec.seed}
        )
        inputs = run_inputs(candidates[0], data, test_rows, training_set, locations)
        for candidate in candidates:
            _log_candidate(candidate, inputs, tags)
        mlflow.log_metrics({f"best_{k}": v for k, v in best.metrics.items()})
        mlflow.set_tags({"lakehouse.best_candidate": best.name, PROMOTION_TAG: decision.reason})
        registered = mlflow.register_model(
            best.model_uri,
            spec.registered_name,
            tags={
                FINGERPRINT_TAG: data.fingerprint,
                PROMOTION_TAG: decision.reason,
                PROMOTE_TAG: str(decision.promote).lower(),
            },
        )
        version = str(registered.version)
        crash_point("model:registered")
        client.set_registered_model_alias(spec.registered_name, CHALLENGER, version)
        client.update_model_version(
            spec.registered_name,
            version,
            description=f"{best.name} trained by run {ctx.run_id}. Promotion: {decision.reason}",
        )
        if decision.promote:
            client.set_registered_model_alias(spec.registered_name, CHAMPION, version)
            crash_point("model:champion")
        client.set_model_version_tag(spec.registered_name, version, ALIASES_SET_TAG, "true")
        mlflow.set_tag("lakehouse.registered_version", version)
    return version, parent.info.run_id


def _set_experiment(ctx: TaskContext, spec: ModelSpec, name: str) -> None:
    import mlflow

    experiment = spec.experiment or f"/{ctx.project.name}/{name}"
    if mlflow.get_experiment_by_name(experiment) is None:
        # A local store keeps artifacts under the data root; a tracking server decides itself
        # (its --default-artifact-root or proxied artifact store).
        local = tracking_uri(ctx.project).startswith(("sqlite:", "file:", "/"))
        location = artifact_root(ctx.project) if local else None
        mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment)


def _run_tags(
    ctx: TaskContext, spec: ModelSpec, training_set: TrainingSet, data: TrainingData
) -> dict[str, str]:
    tags = {
        "lakehouse.run_id": ctx.run_id,
        "lakehouse.job_task": ctx.task_key,
        "lakehouse.registered_name": spec.registered_name,
        FINGERPRINT_TAG: data.fingerprint,
        "lakehouse.input_tables": json.dumps(training_set.input_versions, sort_keys=True),
    }
    for table, version in training_set.input_versions.items():
        tags[f"lakehouse.input.{table}"] = str(version)
    commit = git_commit(str(ctx.project.root))
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


@dataclass(frozen=True)
class RunInputs:
    """What every candidate run logs alike, prepared once per training run."""

    datasets: list[tuple[Any, str]]  # (MLflow dataset, context)
    signature: Any
    input_example: pd.DataFrame


def run_inputs(
    candidate: Candidate,
    data: TrainingData,
    test_rows: np.ndarray,
    training_set: TrainingSet,
    locations: dict[str, str],
) -> RunInputs:
    """Input tables (by path and Delta version), the training and holdout frames, the signature.

    The signature is inferred from a sample that includes rows with missing values, so
    columns that can be missing are marked optional without scanning every row.
    """
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature

    datasets: list[tuple[Any, str]] = []
    for table, version in training_set.input_versions.items():
        # by path: a three-part name makes MLflow look the table up in Databricks Unity Catalog
        source = DeltaDatasetSource(path=locations[table], delta_table_version=version)
        datasets.append((MetaDataset(source, name=table), "input_table"))  # type: ignore[abstract]
    train_mask = np.ones(len(data.frame), dtype=bool)
    train_mask[test_rows] = False
    datasets.append(
        (from_pandas(data.frame[train_mask], name="training_set", targets=data.label), "training")
    )
    datasets.append(
        (
            from_pandas(data.frame.iloc[test_rows], name="holdout", targets=data.label),
            "evaluation",
        )
    )
    x_train = data.x[train_mask]
    sample = pd.concat([x_train.head(1000), x_train[x_train.isna().any(axis=1)].head(1000)])
    signature = infer_signature(sample, candidate.model.predict(sample))
    return RunInputs(datasets, signature, x_train.head(3))


def _log_candidate(candidate: Candidate, inputs: RunInputs, tags: dict[str, str]) -> None:
    """One nested MLflow run: params, metrics, inputs with Delta versions, the model."""
    import mlflow
    import skops.io

    with mlflow.start_run(run_name=candidate.name, nested=True, tags=tags) as run:
        estimator = candidate.model.steps[-1][1]
        params = {k: v for k, v in estimator.get_params().items() if not callable(v)}
        mlflow.log_params({"candidate": candidate.name, "estimator": candidate.estimator, **params})
        mlflow.set_tag(MODEL_KIND_TAG, model_kind(candidate.model))
        mlflow.log_metrics(candidate.metrics)
        for dataset, context in inputs.datasets:
            mlflow.log_input(dataset, context=context)
        # skops (not pickle) format; the types this model needs are listed as trusted.
        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(candidate.model))
        info = mlflow.sklearn.log_model(
            sk_model=candidate.model,
            name="model",
            signature=inputs.signature,
            input_example=inputs.input_example,
            pip_requirements=_pip_requirements(),
            serialization_format="skops",
            skops_trusted_types=trusted,
        )
        candidate.run_id = run.info.run_id
        candidate.model_uri = info.model_uri


def _champion_on_holdout(
    client: Any, spec: ModelSpec, champion: Any, x_test: pd.DataFrame, y_test: pd.Series
) -> dict[str, float] | None:
    """The current champion's metrics on this run's holdout, so both are judged alike.

    If the champion cannot score these columns (its features changed), the metrics logged
    when it was trained are used instead.
    """
    import mlflow

    if champion is None:
        return None
    try:
        model = mlflow.sklearn.load_model(model_uri(spec.registered_name, CHAMPION))
        return evaluate(model, x_test, y_test)
    except Exception as exc:  # any load or schema failure falls back
        log.warning(
            "champion v%s not re-evaluated (%s); using its logged metrics", champion.version, exc
        )
        return {k: float(v) for k, v in client.get_run(champion.run_id).data.metrics.items()}


def _version_with_fingerprint(client: Any, spec: ModelSpec, fingerprint: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{spec.registered_name}'")
    except MlflowException:
        return None
    matches = [v for v in versions if v.tags.get(FINGERPRINT_TAG) == fingerprint]
    return max(matches, key=lambda v: int(v.version)) if matches else None


def git_commit(path: str) -> str | None:
    """The commit checked out at ``path``, when it is inside a git work tree."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [
        f"{pkg}=={version(pkg)}" for pkg in ("scikit-learn", "skops", "pandas", "numpy", "mlflow")
    ]
