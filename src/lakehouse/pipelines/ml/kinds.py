"""Model kinds (binary, multiclass, regression): their outputs and their metrics, in one place.

A model's *task* is configured (``task: classification | regression``); whether a classifier
is binary or multiclass follows from the classes it was trained on, so a fitted model tells
its own kind (:func:`model_kind`). Training, batch scoring, serving and monitoring all get a
model's outputs from :func:`model_outputs` and compute metrics with :func:`evaluation_metrics`.

Outputs per kind:

- **binary**: ``prediction`` (the class) and ``probability``, the probability of class 1
  (of the second class when no class is 1);
- **multiclass**: ``prediction``, ``probability`` (of the predicted class) and
  ``probabilities``, every class's probability keyed by the class as a string;
- **regression**: ``prediction`` (a number), no probability.

Metrics per kind (on held-out or labelled rows):

- **binary**: accuracy; precision, recall and F1 of class 1; ROC AUC of the class-1
  probability; plus the macro and weighted averages of precision, recall and F1;
- **multiclass**: accuracy; precision, recall and F1 as macro averages (also logged as
  ``*_macro``) and weighted averages (``*_weighted``); ROC AUC one-vs-rest, macro-averaged;
- **regression**: rmse, mae (lower is better) and r2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from lakehouse.config.ml import CLASSIFICATION_METRICS, LOWER_IS_BETTER, REGRESSION_METRICS

ModelKind = Literal["binary", "multiclass", "regression"]
_AVERAGED = ("precision", "recall", "f1")


def model_kind(model: Any) -> ModelKind:
    """The kind of a fitted scikit-learn model (or pipeline): from its classes, if any."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        return "regression"
    return "binary" if len(classes) <= 2 else "multiclass"


def positive_index(classes: Sequence[Any]) -> int:
    """The column of class 1 in a binary model's probabilities (else the last column)."""
    listed = list(classes)
    return listed.index(1) if 1 in listed else len(listed) - 1


@dataclass(frozen=True)
class ModelOutputs:
    """A model's outputs for a batch of rows (see the module docstring)."""

    kind: ModelKind
    prediction: np.ndarray  # int classes, or float numbers for regression
    probability: np.ndarray | None = None  # binary: P(class 1); multiclass: P(predicted)
    matrix: np.ndarray | None = None  # multiclass: one column per class, in ``classes`` order
    classes: tuple[str, ...] = ()  # multiclass: the classes as strings

    def probabilities(self) -> list[dict[str, float]] | None:
        """Multiclass: per row, each class's probability keyed by the class; else None."""
        if self.matrix is None:
            return None
        return [dict(zip(self.classes, map(float, row), strict=True)) for row in self.matrix]


def output_method(model: Any) -> str:
    """The one method a model runs for its outputs: ``predict`` for a regressor, else
    ``predict_proba`` (the prediction is the class with the highest probability, which is
    what ``predict`` gives for these estimators)."""
    return "predict" if model_kind(model) == "regression" else "predict_proba"


def outputs_of(model: Any, raw: Any) -> ModelOutputs:
    """The outputs from what :func:`output_method` returned for a batch of rows."""
    kind = model_kind(model)
    if kind == "regression":
        return ModelOutputs(kind, np.asarray(raw, dtype="float64"))
    matrix = np.asarray(raw, dtype="float64")
    classes = np.asarray(model.classes_)
    best = np.argmax(matrix, axis=1)
    predicted = classes[best].astype("int64")
    if kind == "binary":
        return ModelOutputs(kind, predicted, matrix[:, positive_index(list(classes))])
    return ModelOutputs(
        kind,
        predicted,
        matrix[np.arange(len(matrix)), best],
        matrix,
        tuple(str(c) for c in classes),
    )


def model_outputs(model: Any, x: pd.DataFrame) -> ModelOutputs:
    """The outputs of ``model`` for the input frame ``x``, by the model's kind (the model
    runs once, see :func:`output_method`)."""
    return outputs_of(model, getattr(model, output_method(model))(x))


def probability_matrix(maps: Sequence[Any]) -> tuple[list[Any], np.ndarray]:
    """Per-class probability maps (as batch scoring and serving give them: mappings, or
    lists of pairs; None for none) as classes and a matrix; classes that read as integers
    become ints (so they compare with int labels)."""
    maps = [dict(m) if m is not None else {} for m in maps]
    keys = sorted({k for m in maps for k in m})

    def as_class(key: str) -> Any:
        try:
            return int(key)
        except ValueError:
            return key

    classes = sorted((as_class(k) for k in keys), key=lambda c: (isinstance(c, str), c))
    names = [str(c) for c in classes]
    matrix = np.array(
        [[float(m.get(n, 0.0)) for n in names] for m in maps], dtype="float64"
    ).reshape(len(maps), len(names))
    return classes, matrix


def metric_names(kind: ModelKind) -> tuple[str, ...]:
    """Every metric :func:`evaluation_metrics` gives for ``kind``."""
    return REGRESSION_METRICS if kind == "regression" else CLASSIFICATION_METRICS


def evaluation_metrics(
    kind: ModelKind,
    label: Any,
    prediction: Any,
    score: Any = None,
    classes: Sequence[Any] | None = None,
) -> dict[str, float]:
    """The metrics of ``kind`` (see the module docstring) for labelled rows.

    ``score``: binary, the class-1 probabilities; multiclass, the probability matrix with a
    column per ``classes`` entry; regression, unused. A metric that is undefined for these
    rows (ROC AUC with one class present, r2 of one row, anything of no rows) is NaN.
    """
    y = np.asarray(label)
    p = np.asarray(prediction)
    if len(y) == 0:
        return {name: float("nan") for name in metric_names(kind)}
    if kind == "regression":
        return _regression_metrics(y.astype("float64"), p.astype("float64"))
    return _classification_metrics(kind, y, p, score, classes)


def _regression_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "rmse": math.sqrt(float(mean_squared_error(y, p))),
        "mae": float(mean_absolute_error(y, p)),
        "r2": float(r2_score(y, p)) if len(y) > 1 else float("nan"),
    }


def _classification_metrics(
    kind: ModelKind, y: np.ndarray, p: np.ndarray, score: Any, classes: Sequence[Any] | None
) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

    out = {"accuracy": float(accuracy_score(y, p))}
    for average in ("macro", "weighted"):
        values = precision_recall_fscore_support(y, p, average=average, zero_division=0)
        for name, value in zip(_AVERAGED, values[:3], strict=True):
            out[f"{name}_{average}"] = float(value)
    if kind == "binary":
        values = precision_recall_fscore_support(y, p, average="binary", zero_division=0)
        out.update({n: float(v) for n, v in zip(_AVERAGED, values[:3], strict=True)})
        both = len(np.unique(y)) > 1 and score is not None
        out["roc_auc"] = float(roc_auc_score(y, np.asarray(score))) if both else float("nan")
    else:
        out.update({n: out[f"{n}_macro"] for n in _AVERAGED})
        out["roc_auc"] = _one_vs_rest_auc(y, score, classes)
    return {name: out[name] for name in CLASSIFICATION_METRICS}


def _one_vs_rest_auc(y: np.ndarray, score: Any, classes: Sequence[Any] | None) -> float:
    """Macro-averaged one-vs-rest ROC AUC over the classes present in ``y`` (NaN if < 2)."""
    from sklearn.metrics import roc_auc_score

    if score is None or classes is None:
        return float("nan")
    matrix = np.asarray(score, dtype="float64")
    listed = list(classes)
    present = [c for c in listed if (y == c).any()]
    if len(present) < 2:
        return float("nan")
    aucs = [roc_auc_score(y == c, matrix[:, listed.index(c)]) for c in present]
    return float(np.mean(aucs))


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER


def improvement(metric: str, new: float, old: float) -> float:
    """How much better ``new`` is than ``old`` on ``metric`` (negative: worse)."""
    return old - new if lower_is_better(metric) else new - old


def worse_than(metric: str, value: float, limit: float) -> bool:
    """Whether ``value`` is on the wrong side of ``limit`` (a minimum, or a maximum for
    metrics where lower is better)."""
    return value > limit if lower_is_better(metric) else value < limit
