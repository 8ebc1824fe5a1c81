"""Job-level settings as Databricks Asset Bundles define them: job parameters, triggers,
notifications, and the keys that only mean something on Databricks (compute, git, queue,
health, deployment …), which are accepted and kept for the export.

Locally: ``parameters`` are resolved per run (``--params name=value`` overrides the
defaults), ``trigger.periodic`` and ``trigger.file_arrival`` (a local path) are run by
``lakehouse schedule``, ``email_notifications`` are noted in the run's summary ("would
notify"), and the rest is accepted as written.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lakehouse.config.base import StrictModel

PauseStatus = Literal["PAUSED", "UNPAUSED"]
Scalar = str | int | float | bool


class JobParameter(StrictModel):
    """A job parameter: referenced as ``{{job.parameters.<name>}}`` by tasks."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", description="the parameter's name")
    default: str = Field(description="its value when a run does not set one (--params)")

    @field_validator("default", mode="before")
    @classmethod
    def _as_string(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value) if isinstance(value, int | float) else value


class EmailNotifications(StrictModel):
    """Addresses Databricks mails; locally each is logged as "would notify" in the run notes."""

    on_start: list[str] = Field(default_factory=list)
    on_success: list[str] = Field(default_factory=list)
    on_failure: list[str] = Field(default_factory=list)
    on_duration_warning_threshold_exceeded: list[str] = Field(default_factory=list)
    on_streaming_backlog_exceeded: list[str] = Field(default_factory=list)
    no_alert_for_skipped_runs: bool | None = None


class NotificationSettings(StrictModel):
    no_alert_for_skipped_runs: bool | None = None
    no_alert_for_canceled_runs: bool | None = None


class Periodic(StrictModel):
    """Start the job every ``interval`` ``unit`` after the last start."""

    interval: int = Field(ge=1, description="how many units between starts")
    unit: Literal["HOURS", "DAYS", "WEEKS"] = Field(description="HOURS, DAYS or WEEKS")

    @property
    def seconds(self) -> int:
        return self.interval * {"HOURS": 3600, "DAYS": 86_400, "WEEKS": 604_800}[self.unit]


class FileArrival(StrictModel):
    """Start the job when files arrive under ``url`` (locally: a directory path)."""

    url: str = Field(description="the watched location; locally a path (or file: URI)")
    min_time_between_triggers_seconds: int = Field(
        0, ge=0, description="at least this long between two starts"
    )
    wait_after_last_change_seconds: int = Field(
        0, ge=0, description="start only once no file changed for this long"
    )


class TableUpdate(StrictModel):
    """Start the job when tables are updated (Databricks only: not run locally)."""

    table_names: list[str] = Field(min_length=1)
    condition: Literal["ANY_UPDATED", "ALL_UPDATED"] | None = None
    min_time_between_triggers_seconds: int | None = Field(None, ge=0)
    wait_after_last_change_seconds: int | None = Field(None, ge=0)


class Trigger(StrictModel):
    """What starts the job besides a cron ``schedule``: exactly one kind."""

    pause_status: PauseStatus = Field("UNPAUSED", description="PAUSED: the trigger does not fire")
    periodic: Periodic | None = None
    file_arrival: FileArrival | None = None
    table_update: TableUpdate | None = None
    table: TableUpdate | None = Field(None, description="older name of table_update")

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        kinds = [
            k for k in ("periodic", "file_arrival", "table_update", "table") if getattr(self, k)
        ]
        if len(kinds) != 1:
            raise ValueError("give exactly one of 'periodic', 'file_arrival' or 'table_update'")
        return self

    @property
    def kind(self) -> str:
        for kind in ("periodic", "file_arrival", "table_update", "table"):
            if getattr(self, kind) is not None:
                return kind
        return ""


class Continuous(StrictModel):
    """Databricks keeps one run going at all times (not run locally)."""

    pause_status: PauseStatus = "UNPAUSED"
    task_retry_mode: Literal["NEVER", "ON_FAILURE"] | None = None


class JobCluster(StrictModel):
    """A cluster tasks share by ``job_cluster_key`` (Databricks compute: ignored locally)."""

    job_cluster_key: str
    new_cluster: dict[str, Any] = Field(default_factory=dict)


class JobEnvironment(StrictModel):
    """A serverless environment tasks name by ``environment_key`` (ignored locally)."""

    environment_key: str
    spec: dict[str, Any] | None = None


class GitSource(StrictModel):
    git_url: str
    git_provider: str
    git_branch: str | None = None
    git_tag: str | None = None
    git_commit: str | None = None
    git_snapshot: dict[str, Any] | None = None
    sparse_checkout: dict[str, Any] | None = None
    job_source: dict[str, Any] | None = None


class Queue(StrictModel):
    enabled: bool


class HealthRule(StrictModel):
    metric: str
    op: Literal["GREATER_THAN"] = "GREATER_THAN"
    value: int


class Health(StrictModel):
    rules: list[HealthRule] = Field(default_factory=list)


class Deployment(StrictModel):
    kind: str
    metadata_file_path: str | None = None


# job keys accepted for Databricks and without a local meaning (compute, workspace services);
# email_notifications, health (run notes), trigger, schedule, parameters and timeout_seconds
# act locally. `lakehouse bundle validate` lists these as ignored (lakehouse.config.dab).
JOB_IGNORED_KEYS = (
    "job_clusters",
    "environments",
    "git_source",
    "queue",
    "continuous",
    "edit_mode",
    "format",
    "performance_target",
    "budget_policy_id",
    "usage_policy_id",
    "deployment",
    "notification_settings",
)
