"""Job models: tasks, their dependencies, schedules, retries, notifications and permissions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from lakehouse.config.base import (
    DottedCallable,
    Identifier,
    StrictModel,
)
from lakehouse.config.job_settings import (
    Continuous,
    Deployment,
    EmailNotifications,
    GitSource,
    Health,
    JobCluster,
    JobEnvironment,
    JobParameter,
    NotificationSettings,
    Queue,
    Scalar,
    Trigger,
)
from lakehouse.config.tasks import (
    TASK_KINDS,
    ConditionTask,
    NotebookTask,
    PipelineTask,
    PythonWheelTask,
    RunIf,
    RunJobTask,
    SparkPythonTask,
    TaskDependency,
    no_secret_parameters,
)
from lakehouse.core.cron import parse_schedule

PlainParameters = Annotated[list[str], AfterValidator(no_secret_parameters)]


class RunAs(StrictModel):
    """The identity a job runs as (Databricks Asset Bundles ``run_as``)."""

    user_name: str | None = None
    service_principal_name: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> RunAs:
        if (self.user_name is None) == (self.service_principal_name is None):
            raise ValueError("give exactly one of 'user_name' or 'service_principal_name'")
        return self

    @property
    def principal(self) -> str:
        return str(self.user_name or self.service_principal_name)


class PythonFunctionTask(StrictModel):
    """A task function given by module path (it receives the TaskContext like TASK does)."""

    function: DottedCallable = Field(description="package.module:function(ctx)")
    parameters: PlainParameters = Field(default_factory=list)


class Task(StrictModel):
    task_key: Identifier
    description: str = Field("", description="what the task does")
    depends_on: list[TaskDependency] = Field(
        default_factory=list, description="tasks that must finish first (see run_if)"
    )
    run_if: RunIf = Field(
        "ALL_SUCCESS", description="when the task runs, given how its dependencies ended"
    )
    spark_python_task: SparkPythonTask | None = Field(
        None, description="run a jobs/ script (TASK) or a plain PySpark script"
    )
    python_function_task: PythonFunctionTask | None = Field(
        None, description="call a function with the TaskContext"
    )
    notebook_task: NotebookTask | None = Field(None, description="run a notebook with nbclient")
    python_wheel_task: PythonWheelTask | None = Field(
        None, description="call a package's entry point"
    )
    pipeline_task: PipelineTask | None = Field(None, description="update a declarative pipeline")
    run_job_task: RunJobTask | None = Field(None, description="run another job of the bundle")
    condition_task: ConditionTask | None = Field(
        None, description="compare two values; the outcome drives depends_on[].outcome"
    )
    max_retries: int = Field(
        default=0,
        ge=-1,
        description="retries after a failed attempt; -1: retry indefinitely (locally capped "
        "at 25 retries)",
    )
    min_retry_interval_millis: int = Field(
        default=0,
        ge=0,
        description="least time from a failed attempt's start to its retry (no doubling, as "
        "on Databricks); 0: retry at once",
    )
    retry_on_timeout: bool = Field(False, description="retry an attempt that timed out")
    timeout_seconds: int = Field(default=0, ge=0, description="0 = no timeout")
    run_as: RunAs | None = Field(default=None, description="default: the job's run_as")
    # compute: meaningful on Databricks only; accepted and ignored locally
    libraries: list[dict[str, Any]] = Field(default_factory=list, description="ignored locally")
    environment_key: str | None = Field(None, description="ignored locally")
    job_cluster_key: str | None = Field(None, description="ignored locally")
    existing_cluster_id: str | None = Field(None, description="ignored locally")
    new_cluster: dict[str, Any] | None = Field(None, description="ignored locally")

    @model_validator(mode="after")
    def _one_kind(self) -> Task:
        given = [kind for kind in TASK_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(repr(k) for k in TASK_KINDS)}")
        return self

    @property
    def kind(self) -> str:
        """The task kind field that is given (``notebook_task``, ``spark_python_task`` ...)."""
        return next(kind for kind in TASK_KINDS if getattr(self, kind) is not None)

    @property
    def parameters(self) -> list[str]:
        kind = self.spark_python_task or self.python_function_task or self.python_wheel_task
        return list(kind.parameters) if kind is not None else []


class Schedule(StrictModel):
    """When a job runs: a Quartz cron expression (Databricks) or a 5-field cron expression."""

    quartz_cron_expression: str | None = Field(
        default=None, description="sec min hour day-of-month month day-of-week [year]"
    )
    cron_expression: str | None = Field(default=None, description="min hour dom month dow")
    timezone_id: str = Field("UTC", description="time zone of the cron expression")
    pause_status: Literal["PAUSED", "UNPAUSED"] = Field(
        "UNPAUSED", description="PAUSED jobs are listed by the scheduler but not run"
    )

    @model_validator(mode="after")
    def _one_expression(self) -> Schedule:
        if (self.quartz_cron_expression is None) == (self.cron_expression is None):
            raise ValueError("give exactly one of 'quartz_cron_expression' or 'cron_expression'")
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone_id)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone_id {self.timezone_id!r}") from None
        parse_schedule(self.quartz_cron_expression, self.cron_expression)  # CronError
        return self


class Webhook(StrictModel):
    """A URL the run's state is POSTed to, or a Databricks notification destination ``id``
    (kept for the export; locally noted as "would notify")."""

    url: str | None = Field(None, pattern=r"^https?://")
    id: str | None = Field(None, description="a Databricks notification destination id")

    @model_validator(mode="after")
    def _url_or_id(self) -> Webhook:
        if (self.url is None) == (self.id is None):
            raise ValueError("give exactly one of 'url' or 'id'")
        return self


class WebhookNotifications(StrictModel):
    on_start: list[Webhook] = Field(default_factory=list)
    on_success: list[Webhook] = Field(default_factory=list)
    on_failure: list[Webhook] = Field(default_factory=list)
    on_duration_warning_threshold_exceeded: list[Webhook] = Field(default_factory=list)
    on_streaming_backlog_exceeded: list[Webhook] = Field(default_factory=list)


class Permission(StrictModel):
    level: Literal[
        "CAN_VIEW", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE_RUN", "CAN_MANAGE", "IS_OWNER"
    ] = Field(description="the permission level (as Databricks Asset Bundles spell it)")
    user_name: str | None = Field(
        None, description="one of user_name, group_name, service_principal_name"
    )
    group_name: str | None = None
    service_principal_name: str | None = None

    @model_validator(mode="after")
    def _one_principal(self) -> Permission:
        given = [self.user_name, self.group_name, self.service_principal_name]
        if sum(x is not None for x in given) != 1:
            raise ValueError(
                "give exactly one of 'user_name', 'group_name' or 'service_principal_name'"
            )
        return self

    @property
    def principal(self) -> str:
        return str(self.user_name or self.group_name or self.service_principal_name)


class Job(StrictModel):
    name: str | None = Field(None, description="label of the job")
    description: str = Field("", description="what the job does")
    run_as: RunAs | None = Field(default=None, description="default: the bundle's run_as")
    schedule: Schedule | None = Field(None, description="when `lakehouse schedule` starts the job")
    trigger: Trigger | None = Field(
        None, description="periodic or file_arrival: run by `lakehouse schedule`"
    )
    continuous: Continuous | None = Field(None, description="Databricks only (ignored locally)")
    parameters: list[JobParameter] = Field(
        default_factory=list,
        description="job parameters; `--params name=value` overrides a default for one run",
    )
    tags: dict[str, Scalar] = Field(default_factory=dict, description="labels, exported as is")
    max_concurrent_runs: int = Field(default=1, ge=1)
    max_parallel_tasks: int = Field(
        default=1, ge=1, description="independent tasks run side by side up to this many"
    )
    timeout_seconds: int = Field(0, ge=0, description="the whole run's timeout; 0 = none")
    webhook_notifications: WebhookNotifications = Field(
        default_factory=WebhookNotifications,
        description="URLs sent the run's state as JSON; a failed call is only logged",
    )
    email_notifications: EmailNotifications = Field(
        default_factory=EmailNotifications,
        description="addresses Databricks mails; locally logged as 'would notify' in the run",
    )
    notification_settings: NotificationSettings | None = None
    permissions: list[Permission] = Field(
        default_factory=list,
        description="exported to Databricks; the principals must be declared in the catalog",
    )
    job_clusters: list[JobCluster] = Field(default_factory=list, description="Databricks compute")
    environments: list[JobEnvironment] = Field(
        default_factory=list, description="Databricks serverless environments"
    )
    git_source: GitSource | None = None
    queue: Queue | None = None
    health: Health | None = None
    edit_mode: Literal["UI_LOCKED", "EDITABLE"] | None = None
    format: Literal["SINGLE_TASK", "MULTI_TASK"] | None = None
    performance_target: Literal["PERFORMANCE_OPTIMIZED", "STANDARD"] | None = None
    budget_policy_id: str | None = None
    usage_policy_id: str | None = None
    deployment: Deployment | None = None
    tasks: list[Task] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_way_to_start(self) -> Job:
        given = [k for k in ("schedule", "trigger", "continuous") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of 'schedule', 'trigger', 'continuous' ({given})")
        names = [p.name for p in self.parameters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate job parameter: {', '.join(duplicates)}")
        return self

    @property
    def parameter_defaults(self) -> dict[str, str]:
        """The job parameters' default values by name."""
        return {p.name: p.default for p in self.parameters}

    @model_validator(mode="after")
    def _dag(self) -> Job:
        keys = [t.task_key for t in self.tasks]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"duplicate task_key: {', '.join(duplicates)}")
        for task in self.tasks:
            for dep in task.depends_on:
                if dep.task_key not in keys:
                    raise ValueError(
                        f"task {task.task_key!r} depends on unknown task {dep.task_key!r}"
                    )
        task_order(self)  # raises on a cycle
        return self


def task_order(job: Job) -> list[Task]:
    """Tasks in dependency order (stable: declaration order among ready tasks)."""
    done: set[str] = set()
    ordered: list[Task] = []
    pending = list(job.tasks)
    while pending:
        ready = [t for t in pending if all(d.task_key in done for d in t.depends_on)]
        if not ready:
            cycle = ", ".join(t.task_key for t in pending)
            raise ValueError(f"tasks form a dependency cycle: {cycle}")
        for task in ready:
            ordered.append(task)
            done.add(task.task_key)
            pending.remove(task)
    return ordered
