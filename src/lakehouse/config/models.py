"""Typed models for ``bundle.yml`` and the ``conf/*.yml`` files it includes.

Every model forbids unknown keys, so a typo is an error naming the file and key path
rather than a setting that is silently ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from lakehouse.config.base import (  # noqa: F401 - re-exported
    DOTTED_CALLABLE,
    IDENTIFIER,
    TABLE_NAME,
    DottedCallable,
    Encoding,
    Identifier,
    StrictModel,
    TableName,
)
from lakehouse.config.rules import Rule
from lakehouse.core.cron import parse_schedule

# Table features the embedded engine (Sail) refuses to write; a table carrying them
# could no longer be written by the default engine.
UNSUPPORTED_TABLE_PROPERTIES = frozenset(
    {
        "delta.enablechangedatafeed",
        "delta.enablerowtracking",
        "delta.feature.domainmetadata",
        "delta.feature.rowtracking",
        "delta.feature.changedatafeed",
    }
)

SPARK_TYPE = re.compile(
    r"^(string|boolean|tinyint|byte|smallint|short|int|integer|bigint|long|float|double|date|"
    r"timestamp|timestamp_ntz|binary|decimal\(\s*\d+\s*,\s*\d+\s*\)|"
    r"(array|map|struct)<.+>)$",
    re.IGNORECASE,
)


# ---------------------------------------------------------------- bundle.yml


class BundleInfo(StrictModel):
    name: Identifier


class Variable(StrictModel):
    description: str = ""
    default: str | int | float | bool | None = None


class DeltaJars(StrictModel):
    """Where JVM Spark gets the Delta Lake jars from."""

    packages: list[str] | None = Field(
        default=None,
        description="Maven coordinates for spark.jars.packages; default: delta-spark_2.13 at the "
        "installed delta-spark wheel's version; [] adds no Delta jars (plain Spark)",
    )
    jars_dir: str | None = Field(
        default=None, description="a directory holding delta-spark_2.13 and delta-storage jars"
    )


class EngineSpec(StrictModel):
    kind: Literal["sail", "spark", "connect"] = "sail"
    master: str = "local[*]"
    remote: str | None = Field(default=None, description="sc://host:port for the connect engine")
    conf: dict[str, str] = Field(default_factory=dict)
    delta: DeltaJars = Field(default_factory=DeltaJars)

    @model_validator(mode="after")
    def _remote_for_connect(self) -> EngineSpec:
        if self.kind == "connect" and not self.remote:
            raise ValueError("engine kind 'connect' needs 'remote: sc://host:port'")
        if self.remote is not None and not self.remote.startswith("sc://"):
            raise ValueError(f"remote must start with sc:// (got {self.remote!r})")
        return self


class Target(StrictModel):
    default: bool = False
    mode: Literal["development", "production"] = "development"
    engine: EngineSpec = Field(default_factory=EngineSpec)
    variables: dict[str, str | int | float | bool] = Field(default_factory=dict)


class TaskDependency(StrictModel):
    task_key: Identifier


class SparkPythonTask(StrictModel):
    python_file: str = Field(description="a jobs/ script, relative to the bundle root")
    parameters: list[str] = Field(default_factory=list)


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
    parameters: list[str] = Field(default_factory=list)


class Task(StrictModel):
    task_key: Identifier
    description: str = ""
    depends_on: list[TaskDependency] = Field(default_factory=list)
    spark_python_task: SparkPythonTask | None = None
    python_function_task: PythonFunctionTask | None = None
    max_retries: int = Field(default=0, ge=0, description="retries after a failed attempt")
    min_retry_interval_millis: int = Field(
        default=1000, ge=0, description="wait before the first retry; doubles per retry"
    )
    retry_on_timeout: bool = False
    timeout_seconds: int = Field(default=0, ge=0, description="0 = no timeout")
    run_as: RunAs | None = Field(default=None, description="default: the job's run_as")

    @model_validator(mode="after")
    def _one_kind(self) -> Task:
        if (self.spark_python_task is None) == (self.python_function_task is None):
            raise ValueError("give exactly one of 'spark_python_task' or 'python_function_task'")
        return self

    @property
    def parameters(self) -> list[str]:
        kind = self.spark_python_task or self.python_function_task
        return list(kind.parameters) if kind is not None else []


class Schedule(StrictModel):
    """When a job runs: a Quartz cron expression (Databricks) or a 5-field cron expression."""

    quartz_cron_expression: str | None = Field(
        default=None, description="sec min hour day-of-month month day-of-week [year]"
    )
    cron_expression: str | None = Field(default=None, description="min hour dom month dow")
    timezone_id: str = "UTC"
    pause_status: Literal["PAUSED", "UNPAUSED"] = "UNPAUSED"

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
    url: str = Field(pattern=r"^https?://")


class WebhookNotifications(StrictModel):
    on_start: list[Webhook] = Field(default_factory=list)
    on_success: list[Webhook] = Field(default_factory=list)
    on_failure: list[Webhook] = Field(default_factory=list)


class Permission(StrictModel):
    level: Literal["CAN_VIEW", "CAN_MANAGE_RUN", "CAN_MANAGE", "IS_OWNER"]
    user_name: str | None = None
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
    name: str | None = None
    description: str = ""
    run_as: RunAs | None = Field(default=None, description="default: the bundle's run_as")
    schedule: Schedule | None = None
    max_concurrent_runs: int = Field(default=1, ge=1)
    max_parallel_tasks: int = Field(
        default=1, ge=1, description="independent tasks run side by side up to this many"
    )
    webhook_notifications: WebhookNotifications = Field(default_factory=WebhookNotifications)
    permissions: list[Permission] = Field(default_factory=list)
    tasks: list[Task] = Field(min_length=1)

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


class Resources(StrictModel):
    jobs: dict[Identifier, Job] = Field(default_factory=dict)


class BundleSpec(StrictModel):
    bundle: BundleInfo
    run_as: RunAs | None = Field(
        default=None, description="identity for jobs and, by default, for CLI commands"
    )
    include: list[str] = Field(default_factory=list)
    variables: dict[Identifier, Variable] = Field(default_factory=dict)
    targets: dict[Identifier, Target] = Field(min_length=1)
    resources: Resources = Field(default_factory=Resources)

    @field_validator("targets")
    @classmethod
    def _one_default(cls, targets: dict[str, Target]) -> dict[str, Target]:
        defaults = [name for name, t in targets.items() if t.default]
        if len(defaults) > 1:
            raise ValueError(f"only one target may set default: true (found {', '.join(defaults)})")
        return targets


# ---------------------------------------------------------------- conf/*.yml


PRIVILEGES = (
    "USE CATALOG",
    "USE SCHEMA",
    "SELECT",
    "MODIFY",
    "CREATE TABLE",
    "UNMASK",
    "ALL PRIVILEGES",
)
Privilege = Literal[
    "USE CATALOG", "USE SCHEMA", "SELECT", "MODIFY", "CREATE TABLE", "UNMASK", "ALL PRIVILEGES"
]
MaskKind = Literal["hash", "redact", "null"]


class Grant(StrictModel):
    """Privileges for a user, service principal or group (Unity Catalog privilege names)."""

    principal: str = Field(min_length=1)
    privileges: list[Privilege] = Field(min_length=1)


class SecurableGrant(Grant):
    """A grant declared apart from its object (e.g. in a conf/grants.yml)."""

    securable: str = Field(description="catalog, catalog.schema or catalog.schema.table")


class Principals(StrictModel):
    users: list[str] = Field(default_factory=list)
    service_principals: list[str] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(
        default_factory=dict, description="group -> members (users, service principals, groups)"
    )


class Column(StrictModel):
    name: Identifier
    type: str
    nullable: bool = True
    comment: str = ""
    tags: list[str] = Field(default_factory=list, description="e.g. pii")
    mask: MaskKind | None = Field(
        default=None, description="hash | redact | null unless the reader holds UNMASK"
    )

    @field_validator("type")
    @classmethod
    def _spark_type(cls, value: str) -> str:
        if not SPARK_TYPE.match(value.strip()):
            raise ValueError(f"{value!r} is not a Spark SQL type (e.g. string, int, decimal(10,2))")
        return value.strip().lower()


class TableSpec(StrictModel):
    layer: Literal["bronze", "silver", "gold", "system"]
    description: str = ""
    location: str | None = Field(
        default=None, description="default: <storage_root>/<schema>/<table>"
    )
    columns: list[Column] = Field(min_length=1)
    keys: list[str] = Field(default_factory=list)
    partition_by: list[str] = Field(default_factory=list)
    properties: dict[str, str] = Field(default_factory=dict)
    owner: str | None = Field(default=None, description="default: the schema's owner")
    tags: dict[str, str] = Field(default_factory=dict)
    grants: list[Grant] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_columns(self) -> TableSpec:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate column: {', '.join(dupes)}")
        for field_name in ("keys", "partition_by"):
            for col in getattr(self, field_name):
                if col not in names:
                    raise ValueError(f"{field_name} names {col!r}, which is not a declared column")
        for prop in self.properties:
            if prop.lower() in UNSUPPORTED_TABLE_PROPERTIES:
                raise ValueError(
                    f"table property {prop!r} enables a Delta feature the embedded engine "
                    "cannot write; remove it"
                )
        return self


class SchemaSpec(StrictModel):
    description: str = ""
    owner: str | None = Field(default=None, description="default: the catalog's owner")
    tags: dict[str, str] = Field(default_factory=dict)
    grants: list[Grant] = Field(default_factory=list)
    tables: dict[Identifier, TableSpec] = Field(default_factory=dict)


class CatalogSpec(StrictModel):
    name: Identifier
    storage_root: str
    owner: str | None = None
    principals: Principals = Field(default_factory=Principals)
    grants: list[Grant] = Field(default_factory=list)
    schemas: dict[Identifier, SchemaSpec] = Field(default_factory=dict)


class CsvOptions(StrictModel):
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    header: bool = True


SchemaDrift = Literal["rescue", "add_new_columns", "fail"]


class FileSource(StrictModel):
    """A landing directory ingested incrementally: each file once (path + size + mtime)."""

    kind: Literal["files"]
    description: str = ""
    path: str = Field(description="landing directory: a local path or a URI pyarrow can list")
    glob: str = "*"
    format: Literal["csv", "jsonl", "json", "parquet", "excel"]
    csv: CsvOptions = Field(default_factory=CsvOptions)
    target: TableName
    schema_drift: SchemaDrift = "rescue"
    files_per_commit: int = Field(default=100, ge=1, description="files appended per Delta commit")
    encoding: Encoding = Field("utf-8", description="codec of text files without a BOM")
    follow_symlinks_outside: bool = Field(False, description="else such symlinks are refused")


class RetryPolicy(StrictModel):
    """Exponential backoff on 5xx, 429 (honouring Retry-After) and timeouts."""

    max_attempts: int = Field(default=5, ge=1)
    backoff_s: float = Field(default=0.5, ge=0)
    max_backoff_s: float = Field(default=30.0, ge=0)
    retry_on_status: list[int] = Field(default_factory=lambda: [429, 500, 502, 503, 504])


class AuthSpec(StrictModel):
    """A token read from an environment variable at request time; never stored anywhere."""

    token_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    header: str = "Authorization"
    scheme: str = Field(default="Bearer", description="prefix before the token; empty for none")
    query_param: str | None = Field(
        default=None, description="send the token as this query parameter instead of a header"
    )


class Pagination(StrictModel):
    style: Literal["none", "page", "offset", "cursor", "next_link"] = "none"
    page_size: int = Field(default=100, ge=1)
    page_param: str = "page"
    size_param: str = "page_size"
    start_page: int = 1
    offset_param: str = "offset"
    limit_param: str = "limit"
    cursor_param: str = "cursor"
    next_cursor_field: str = "next_cursor"
    next_link_field: str = "next"


class RotatingBatches(StrictModel):
    """An API that serves one batch at a time and moves on to a new one on its own schedule."""

    batch_id_field: str = "batch_number"
    poll_interval_s: float = Field(default=30.0, ge=0)
    max_wait_s: float = Field(
        default=0.0, ge=0, description="how long to wait for a new batch before stopping"
    )
    max_batches: int | None = Field(default=None, ge=1, description="new batches per run")
    exhausted_status: list[int] = Field(
        default_factory=lambda: [400], description="statuses meaning: every batch was served"
    )


class HttpSource(StrictModel):
    """A JSON API: paginated, or serving rotating batches."""

    kind: Literal["http"]
    description: str = ""
    url: str = Field(pattern=r"^https?://")
    params: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    auth: AuthSpec | None = None
    redact_params: list[str] = Field(
        default_factory=list, description="query parameters masked in _request"
    )
    timeout_s: float = Field(default=30.0, gt=0)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    max_requests: int = Field(default=1000, ge=1, description="upper bound on requests per run")
    records_field: str = Field(
        default="data", description="dotted path to the record list; empty: the payload itself"
    )
    columns: list[str] | None = Field(
        default=None, description="names for records that are JSON arrays, in order"
    )
    pagination: Pagination = Field(default_factory=Pagination)
    rotating: RotatingBatches | None = None
    target: TableName
    schema_drift: SchemaDrift = "rescue"

    @model_validator(mode="after")
    def _one_mode(self) -> HttpSource:
        if self.rotating is not None and self.pagination.style != "none":
            raise ValueError("a source is either rotating or paginated, not both")
        for header in self.headers:
            if header.lower() in ("authorization", "x-api-key", "api-key", "cookie"):
                raise ValueError(f"header {header!r} looks like a secret: use auth.token_env")
        return self


Source = Annotated[FileSource | HttpSource, Field(discriminator="kind")]


class OperationSpec(StrictModel):
    """A source column telling inserts/updates from deletes (change data capture)."""

    column: Identifier
    delete_values: list[str] = Field(default_factory=lambda: ["DELETE", "D"], min_length=1)


class SilverSpec(StrictModel):
    """How a Silver table is built from its Bronze source."""

    source: TableName
    keys: list[Identifier] = Field(min_length=1)
    sequence_by: Identifier | None = Field(
        default=None, description="the latest row per key by this column wins"
    )
    rename: dict[Identifier, Identifier] = Field(
        default_factory=dict, description="target column: source column"
    )
    trim: bool = Field(default=True, description="trim white space of text values")
    case: dict[Identifier, Literal["lower", "upper"]] = Field(default_factory=dict)
    standardize: dict[Identifier, dict[str, str]] = Field(
        default_factory=dict, description="column: {raw value: standard value}"
    )
    transforms: list[DottedCallable] = Field(
        default_factory=list, description="pure DataFrame -> DataFrame functions, applied in order"
    )
    mode: Literal["scd1", "scd2"] = "scd1"
    track_columns: list[Identifier] | None = Field(
        default=None, description="scd2: columns whose change opens a new version (default: all)"
    )
    operation: OperationSpec | None = None
    rules: list[Rule] = Field(default_factory=list)
    great_expectations: bool = Field(
        default=True,
        description="also validate with great-expectations (Data Docs + cross-check); the "
        "compiled SQL path decides either way and is about 3x faster on 1M rows",
    )

    @model_validator(mode="after")
    def _scd2_needs_sequence(self) -> SilverSpec:
        if self.mode == "scd2" and not self.sequence_by:
            raise ValueError("mode scd2 needs sequence_by (it orders the versions)")
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate rule name: {', '.join(dupes)}")
        return self


class GoldSpec(StrictModel):
    """A Gold table built from named inputs by a pure transform function or a SQL query.

    ``features`` adds (or replaces) columns given as Spark SQL expressions over the result.
    A feature table names its ``timestamp_key`` (also one of the catalog table's keys): rows
    are values as of that time, and training sets look them up point-in-time.
    """

    inputs: dict[Identifier, TableName] = Field(min_length=1)
    transform: DottedCallable | None = Field(
        default=None, description="package.module:function(**inputs, **params) -> DataFrame"
    )
    query: str | None = Field(
        default=None,
        description="Spark SQL over the inputs, each visible as a view named by its alias",
    )
    params: dict[str, Any] = Field(default_factory=dict)
    features: dict[Identifier, str] = Field(
        default_factory=dict, description="column name -> Spark SQL expression"
    )
    timestamp_key: Identifier | None = None
    mode: Literal["overwrite"] = "overwrite"

    @model_validator(mode="after")
    def _one_definition(self) -> GoldSpec:
        if (self.transform is None) == (self.query is None):
            raise ValueError("give exactly one of 'transform' or 'query'")
        if self.query is not None and self.params:
            raise ValueError("'params' are passed to a 'transform'; a 'query' takes none")
        return self


Estimator = Literal["logistic_regression", "random_forest", "gradient_boosting"]


class LabelSpec(StrictModel):
    """Where labels come from: one row per example, with the time the label was observed."""

    table: TableName
    keys: list[Identifier] = Field(min_length=1)
    timestamp: Identifier | None = Field(
        default=None, description="label time; features are looked up as of it"
    )
    label: str = Field(description="a column, or a Spark SQL expression giving 0/1")
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
    metric: Literal["roc_auc", "f1", "accuracy", "precision", "recall"] = "roc_auc"
    min_improvement: float = Field(
        default=0.0, ge=0, description="the challenger must beat the champion by at least this"
    )
    thresholds: dict[Literal["roc_auc", "f1", "accuracy", "precision", "recall"], float] = Field(
        default_factory=dict, description="minimum metric values for any champion"
    )


class ScoringSpec(StrictModel):
    input: TableName
    output: TableName


class ModelSpec(StrictModel):
    registered_name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    training_set: TrainingSetSpec
    candidates: dict[Identifier, CandidateSpec] = Field(min_length=1)
    split: SplitSpec = Field(default_factory=SplitSpec)
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)
    scoring: ScoringSpec | None = None
    seed: int = 42
    experiment: str | None = None

    @field_validator("candidates")
    @classmethod
    def _known_estimators(cls, value: dict[str, CandidateSpec]) -> dict[str, CandidateSpec]:
        known = ("logistic_regression", "random_forest", "gradient_boosting")
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


BRONZE_METADATA_COLUMNS: tuple[Column, ...] = (
    Column(name="_source", type="string", nullable=False, comment="source name from conf/"),
    Column(name="_source_file", type="string", comment="file the row came from"),
    Column(name="_request", type="string", comment="HTTP request URL, secrets redacted"),
    Column(name="_http_status", type="int", comment="HTTP status of the response"),
    Column(name="_fetched_at", type="timestamp", comment="when the response arrived"),
    Column(name="_batch_id", type="string", comment="file identity or API batch id"),
    Column(name="_ingested_at", type="timestamp", nullable=False, comment="when it landed"),
    Column(name="_run_id", type="string", nullable=False, comment="the job run that ingested it"),
    Column(name="_corrupt", type="string", comment="why the record could not be parsed"),
    Column(name="_raw", type="string", comment="the raw record text, kept when unparseable"),
    Column(name="_rescued_data", type="string", comment="JSON of values that did not fit"),
)


MonitoredMetric = Literal["roc_auc", "accuracy", "precision", "recall", "f1"]


def _all_metrics() -> list[MonitoredMetric]:
    return ["roc_auc", "accuracy", "precision", "recall", "f1"]


def _default_max_drop() -> dict[MonitoredMetric, float]:
    return {"roc_auc": 0.05}


class DriftSpec(StrictModel):
    """Input drift: each feature of a current window against the champion's training set.

    A feature alerts when its PSI exceeds ``psi_threshold`` AND its test p-value (KS for
    numbers, chi-square for categories) is below ``alpha`` (divided by the number of
    features tested under ``correction: bonferroni``), and the window has ``min_rows``.
    """

    current: Literal["gold", "served"] = Field(
        default="gold",
        description="gold: the rows of the latest batch scoring run; served: logged online "
        "predictions within window_days",
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
    """Metrics of the last batch scoring runs once labels arrive, vs minimums and training."""

    metrics: list[MonitoredMetric] = Field(default_factory=_all_metrics)
    thresholds: dict[MonitoredMetric, float] = Field(
        default_factory=dict, description="absolute minimums"
    )
    max_drop: dict[MonitoredMetric, float] = Field(
        default_factory=_default_max_drop,
        description="largest allowed drop below the champion's training (holdout) metric",
    )
    last_runs: int = Field(default=5, ge=1, description="scoring runs (Delta versions) to judge")
    min_labeled: int = Field(default=30, ge=1, description="fewer labelled rows: no alert")


class ABSpec(StrictModel):
    """Champion vs challenger from served predictions (and labels) within a window."""

    window_days: float = Field(default=7.0, gt=0)
    metric: MonitoredMetric = "roc_auc"
    min_improvement: float = Field(
        default=0.01, ge=0, description="challenger lift that raises a 'consider promoting' alert"
    )
    min_labeled: int = Field(default=30, ge=1)


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


class ConfFile(StrictModel):
    """One file under conf/: any of the sections below."""

    catalog: CatalogSpec | None = None
    sources: dict[Identifier, Source] = Field(default_factory=dict)
    silver: dict[TableName, SilverSpec] = Field(default_factory=dict)
    gold: dict[TableName, GoldSpec] = Field(default_factory=dict)
    models: dict[Identifier, ModelSpec] = Field(default_factory=dict)
    monitoring: MonitoringSpec | None = None
    grants: list[SecurableGrant] = Field(
        default_factory=list, description="grants on catalog objects by name"
    )
