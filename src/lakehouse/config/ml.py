"""Machine-learning models: training sets, candidates, promotion, scoring and monitoring."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from lakehouse.config.base import Identifier, StrictModel, TableName

Task = Literal["classification", "regression"]
Estimator = Literal[
    "logistic_regression", "linear_regression", "random_forest", "gradient_boosting"
]
CLASSIFIERS = ("logistic_regression", "random_forest", "gradient_boosting")
REGRESSORS = ("linear_regression", "random_forest", "gradient_boosting")

ClassificationMetric = Literal[
    "roc_auc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
]
RegressionMetric = Literal["rmse", "mae", "r2"]
Metric = Literal[ClassificationMetric, RegressionMetric]
CLASSIFICATION_METRICS: tuple[str, ...] = get_args(ClassificationMetric)
REGRESSION_METRICS: tuple[str, ...] = get_args(RegressionMetric)
LOWER_IS_BETTER = frozenset({"rmse", "mae"})
"""Metrics where a smaller value is better; every other metric is better when larger."""
MONITORED_BY_TASK: dict[str, tuple[str, ...]] = {
    "classification": ("roc_auc", "accuracy", "precision", "recall", "f1"),
    "regression": ("rmse", "mae", "r2"),
}
"""The metrics monitoring reports per task unless ``performance.metrics`` names others."""
PROMOTION_METRIC_BY_TASK = {"classification": "roc_auc", "regression": "rmse"}
MAX_DROP_BY_TASK: dict[str, dict[str, float]] = {
    "classification": {"roc_auc": 0.05},
    "regression": {"r2": 0.05},
}


def task_metrics(task: str) -> tuple[str, ...]:
    """Every metric a model of ``task`` is evaluated on."""
    return REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS


def task_estimators(task: str) -> tuple[str, ...]:
    """The estimators a candidate of a model of ``task`` may name."""
    return REGRESSORS if task == "regression" else CLASSIFIERS


class LabelSpec(StrictModel):
    """Where labels come from: one row per example, with the time the label was observed."""

    table: TableName
    keys: list[Identifier] = Field(min_length=1)
    timestamp: Identifier | None = Field(
        default=None, description="label time; features are looked up as of it"
    )
    label: str = Field(
        description="a column, or a Spark SQL expression: an integer class (classification) "
        "or a number (regression)"
    )
    where: str | None = Field(default=None, description="Spark SQL filter on the label table")


class FeatureLookup(StrictModel):
    """Features taken from one feature table, joined on keys (as of the label time)."""

    table: TableName
    lookup_keys: list[Identifier] | None = Field(
        default=None, description="label columns matching the table's keys; default: the same names"
    )
    features: list[Identifier] = Field(min_length=1)
    lookback_days: int | None = Field(
        default=None, gt=0, description="ignore feature values older than this at label time"
    )


class TrainingSetSpec(StrictModel):
    labels: LabelSpec
    features: list[FeatureLookup] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_features(self) -> TrainingSetSpec:
        names = [f for lookup in self.features for f in lookup.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature named twice: {', '.join(dupes)}")
        return self


class CandidateSpec(StrictModel):
    estimator: Estimator | None = Field(default=None, description="default: the candidate name")
    params: dict[str, Any] = Field(default_factory=dict)


class SplitSpec(StrictModel):
    by: Literal["time", "random"] = Field(
        default="time",
        description="time: the latest label times are held out (needs a label timestamp)",
    )
    test_size: float = Field(default=0.25, gt=0, lt=1)


class PromotionSpec(StrictModel):
    metric: Metric = Field(
        default="roc_auc", description="default: roc_auc (classification), rmse (regression)"
    )
    min_improvement: float = Field(
        default=0.0, ge=0, description="the challenger must beat the champion by at least this"
    )
    thresholds: dict[Metric, float] = Field(
        default_factory=dict,
        description="limits for any champion: minimums, maximums for rmse and mae",
    )


class ScoringSpec(StrictModel):
    input: TableName
    output: TableName


class ModelSpec(StrictModel):
    registered_name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    task: Task = Field(
        default="classification",
        description="classification (binary or multiclass, told from the labels) or regression",
    )
    training_set: TrainingSetSpec
    candidates: dict[Identifier, CandidateSpec] = Field(min_length=1)
    split: SplitSpec = Field(default_factory=SplitSpec)
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)
    scoring: ScoringSpec | None = None
    seed: int = 42
    experiment: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, data: Any) -> Any:
        """A regression model is promoted on rmse unless ``promotion.metric`` says otherwise."""
        if isinstance(data, dict) and data.get("task") == "regression":
            promotion = data.get("promotion")
            if promotion is None:
                return {**data, "promotion": {"metric": "rmse"}}
            if isinstance(promotion, dict) and "metric" not in promotion:
                return {**data, "promotion": {**promotion, "metric": "rmse"}}
        return data

    @field_validator("candidates")
    @classmethod
    def _known_estimators(cls, value: dict[str, CandidateSpec]) -> dict[str, CandidateSpec]:
        known = get_args(Estimator)
        for name, candidate in value.items():
            if candidate.estimator is None and name not in known:
                raise ValueError(
                    f"candidate {name!r} needs 'estimator' (one of {', '.join(known)})"
                )
        return value

    def estimator_of(self, candidate: str) -> str:
        spec = self.candidates[candidate]
        return spec.estimator or candidate

    @property
    def features(self) -> list[str]:
        return [f for lookup in self.training_set.features for f in lookup.features]


MonitoredMetric = Metric


def _all_metrics() -> list[MonitoredMetric]:
    return ["roc_auc", "accuracy", "precision", "recall", "f1"]


def _default_max_drop() -> dict[MonitoredMetric, float]:
    return {"roc_auc": 0.05}


class DriftSpec(StrictModel):
    """Input drift: each feature of a current window against a reference taken when the
    champion was trained.

    The reference (``reference``) is, by default (``auto``), the scoring input as the scoring
    job reads it (the latest row per key) at the Delta versions the champion's training run
    read, so both sides are the same query at two points in time; ``training`` is the
    point-in-time training set itself (features as of each label time, which for cumulative
    features such as counts differ from any latest snapshot even when nothing changed).

    A feature alerts when its PSI exceeds ``psi_threshold`` AND its test p-value (KS for
    numbers, chi-square for categories) is below ``alpha`` (divided by the number of
    features tested under ``correction: bonferroni``), and the window has ``min_rows``.
    """

    current: Literal["gold", "served"] = Field(
        default="gold",
        description="gold: the rows of the latest batch scoring run; served: logged online "
        "predictions within window_days",
    )
    reference: Literal["auto", "scoring", "training"] = Field(
        default="auto",
        description="scoring: the scoring input (latest row per key) at the table versions the "
        "champion was trained on; training: its point-in-time training set; auto: scoring "
        "when the model has a 'scoring' section, else training",
    )
    window_days: float = Field(default=7.0, gt=0)
    features: list[Identifier] | None = Field(default=None, description="default: all")
    bins: int = Field(default=10, ge=2, le=100, description="PSI bins (reference quantiles)")
    epsilon: float = Field(default=1e-4, gt=0, lt=0.01, description="share of an empty bin")
    psi_threshold: float = Field(default=0.2, gt=0)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    correction: Literal["bonferroni", "none"] = "bonferroni"
    min_rows: int = Field(default=100, ge=1, description="fewer current rows: no alert")
    max_rows: int = Field(
        default=200_000, ge=1000, description="larger frames are compared on a seeded sample"
    )


class QualityMonitorSpec(StrictModel):
    """Data-quality pass rates of each table's latest Silver run against a minimum."""

    min_pass_rate: float = Field(default=0.99, ge=0, le=1)
    tables: dict[TableName, float] = Field(
        default_factory=dict, description="per-table minimum pass rate (overrides the default)"
    )
    only_listed: bool = Field(default=False, description="monitor only the tables listed")


class PerformanceSpec(StrictModel):
    """Metrics of the last batch scoring runs once labels arrive, vs limits and training.

    Left out, ``metrics`` and ``max_drop`` follow the model's task (see
    :meth:`metrics_for` and :meth:`max_drop_for`).
    """

    metrics: list[MonitoredMetric] = Field(
        default_factory=_all_metrics,
        description="default: roc_auc, accuracy, precision, recall, f1 (classification); "
        "rmse, mae, r2 (regression)",
    )
    thresholds: dict[MonitoredMetric, float] = Field(
        default_factory=dict, description="absolute limits: minimums, maximums for rmse and mae"
    )
    max_drop: dict[MonitoredMetric, float] = Field(
        default_factory=_default_max_drop,
        description="largest allowed worsening from the champion's training (holdout) metric "
        "(a drop, or a rise for rmse and mae); default: roc_auc 0.05 (classification), "
        "r2 0.05 (regression)",
    )
    last_runs: int = Field(default=5, ge=1, description="scoring runs (Delta versions) to judge")
    min_labeled: int = Field(default=30, ge=1, description="fewer labelled rows: no alert")

    def metrics_for(self, task: str) -> list[str]:
        """The metrics to report for a model of ``task``: as configured, else its defaults."""
        if "metrics" in self.model_fields_set:
            return list(self.metrics)
        return list(MONITORED_BY_TASK[task])

    def max_drop_for(self, task: str) -> dict[str, float]:
        """The allowed worsening per metric for a model of ``task``."""
        if "max_drop" in self.model_fields_set:
            return {str(k): v for k, v in self.max_drop.items()}
        return dict(MAX_DROP_BY_TASK[task])


class ABSpec(StrictModel):
    """Champion vs challenger from served predictions (and labels) within a window."""

    window_days: float = Field(default=7.0, gt=0)
    metric: MonitoredMetric = Field(
        default="roc_auc", description="default: roc_auc (classification), rmse (regression)"
    )
    min_improvement: float = Field(
        default=0.01,
        ge=0,
        description="challenger lift (a fall for rmse and mae) that raises a 'consider "
        "promoting' alert",
    )
    min_labeled: int = Field(default=30, ge=1)

    def metric_for(self, task: str) -> str:
        """The compared metric for a model of ``task``: as configured, else its default."""
        if "metric" in self.model_fields_set:
            return str(self.metric)
        return PROMOTION_METRIC_BY_TASK[task]


class ModelMonitorSpec(StrictModel):
    """What the monitoring job checks for one model of conf/models.yml."""

    drift: DriftSpec = Field(default_factory=DriftSpec)
    quality: QualityMonitorSpec = Field(default_factory=QualityMonitorSpec)
    performance: PerformanceSpec = Field(default_factory=PerformanceSpec)
    ab: ABSpec = Field(default_factory=ABSpec)


class MonitoringSpec(StrictModel):
    """The ``monitoring:`` section: per-model monitors and where alerts are sent."""

    webhook_url: str = Field(
        default="", pattern=r"^(https?://.*)?$", description="JSON POST per run; empty = none"
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    predictions_table: TableName | None = Field(
        default=None, description="logged online predictions; default <catalog>.bronze.predictions"
    )
    models: dict[Identifier, ModelMonitorSpec] = Field(default_factory=dict)
