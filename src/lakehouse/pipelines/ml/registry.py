"""MLflow tracking and registry access: where it lives, aliases, listing models.

Tracking defaults to sqlite under the project's data directory (no server needed);
``MLFLOW_TRACKING_URI`` or the bundle variable ``mlflow_tracking_uri`` point elsewhere, for
example at a team ``mlflow server`` backed by a real database.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

from lakehouse.config.project import Project

CHAMPION = "champion"
CHALLENGER = "challenger"
METRIC_COLUMNS = ("roc_auc", "f1", "accuracy", "precision", "recall")
REGRESSION_METRIC_COLUMNS = ("rmse", "mae", "r2")


def metric_columns(metrics: list[dict[str, float]]) -> tuple[str, ...]:
    """The metrics to list for these versions: regression's when every version with metrics
    has rmse and none has roc_auc, else classification's."""
    measured = [m for m in metrics if m]
    if measured and all("rmse" in m and "roc_auc" not in m for m in measured):
        return REGRESSION_METRIC_COLUMNS
    return METRIC_COLUMNS


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


def quiet_mlflow() -> None:
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # MLflow probes for a Databricks workspace when it meets three-part table names
    logging.getLogger("mlflow.utils.databricks_utils").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def connect(project: Project) -> Any:
    """Point the ``mlflow`` module at the project's tracking store; return an MlflowClient."""
    import mlflow
    from mlflow.tracking import MlflowClient

    quiet_mlflow()
    uri = tracking_uri(project)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def model_uri(registered_name: str, alias: str = CHAMPION) -> str:
    return f"models:/{registered_name}@{alias}"


def version_by_alias(client: Any, registered_name: str, alias: str) -> Any | None:
    """The model version an alias points at, or None (no such model or alias)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(registered_name, alias)
    except MlflowException:
        return None


def aliases_of(client: Any, registered_name: str, version: str) -> list[str]:
    """The aliases pointing at one version (search results do not carry them)."""
    model = client.get_registered_model(registered_name)
    return sorted(a for a, v in model.aliases.items() if str(v) == str(version))


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    aliases: list[str]
    created: int
    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def list_versions(client: Any, name: str | None = None) -> list[VersionInfo]:
    """Registered model versions (newest first per model) with aliases and run metrics."""
    query = f"name = '{name}'" if name else ""
    versions = client.search_model_versions(query) if query else client.search_model_versions()
    out: list[VersionInfo] = []
    aliases: dict[tuple[str, str], list[str]] = {}
    # search results carry no aliases; the registered model has the alias -> version map
    for model_name in sorted({v.name for v in versions}):
        for alias, number in client.get_registered_model(model_name).aliases.items():
            aliases.setdefault((model_name, str(number)), []).append(alias)
    for v in versions:
        metrics: dict[str, float] = {}
        if v.run_id:
            try:
                metrics = {k: float(x) for k, x in client.get_run(v.run_id).data.metrics.items()}
            except Exception:  # a deleted run leaves the version listed
                metrics = {}
        out.append(
            VersionInfo(
                name=v.name,
                version=str(v.version),
                aliases=sorted(aliases.get((v.name, str(v.version)), [])),
                created=int(v.creation_timestamp or 0),
                run_id=v.run_id or "",
                metrics=metrics,
                tags=dict(v.tags),
            )
        )
    return sorted(out, key=lambda i: (i.name, -int(i.version)))
