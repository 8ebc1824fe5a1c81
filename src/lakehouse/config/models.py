"""Typed models for ``bundle.yml`` and the ``conf/*.yml`` files it includes.

Every model forbids unknown keys, so a typo is an error naming the file and key path
rather than a setting that is silently ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$"
DOTTED_CALLABLE = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"

Identifier = Annotated[str, Field(pattern=IDENTIFIER)]
TableName = Annotated[str, Field(pattern=TABLE_NAME, description="catalog.schema.table")]
DottedCallable = Annotated[
    str, Field(pattern=DOTTED_CALLABLE, description="package.module:function")
]

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


class StrictModel(BaseModel):
    """Base: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
        description="Maven coordinates for spark.jars.packages; default: the delta-spark pip version",
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


class Task(StrictModel):
    task_key: Identifier
    description: str = ""
    depends_on: list[TaskDependency] = Field(default_factory=list)
    spark_python_task: SparkPythonTask


class Job(StrictModel):
    name: str | None = None
    description: str = ""
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


class Column(StrictModel):
    name: Identifier
    type: str
    nullable: bool = True
    comment: str = ""

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
    tables: dict[Identifier, TableSpec] = Field(default_factory=dict)


class CatalogSpec(StrictModel):
    name: Identifier
    storage_root: str
    schemas: dict[Identifier, SchemaSpec] = Field(default_factory=dict)


class CsvOptions(StrictModel):
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    header: bool = True


class FileSource(StrictModel):
    kind: Literal["files"]
    description: str = ""
    path: str = Field(description="landing directory")
    glob: str = "*"
    format: Literal["csv", "jsonl"]
    csv: CsvOptions = Field(default_factory=CsvOptions)
    target: TableName


class SilverSpec(StrictModel):
    source: TableName
    keys: list[Identifier] = Field(min_length=1)
    sequence_by: Identifier | None = Field(
        default=None, description="the latest row per key by this column wins"
    )
    rename: dict[Identifier, Identifier] = Field(
        default_factory=dict, description="target column: source column"
    )


class GoldSpec(StrictModel):
    inputs: dict[Identifier, TableName] = Field(min_length=1)
    transform: DottedCallable
    mode: Literal["overwrite"] = "overwrite"


class ModelSpec(StrictModel):
    registered_name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    feature_table: TableName
    key: list[Identifier] = Field(min_length=1)
    label: Identifier
    features: list[Identifier] = Field(min_length=1)
    estimator: Literal["logistic_regression", "random_forest", "gradient_boosting"]
    params: dict[str, Any] = Field(default_factory=dict)
    test_size: float = Field(default=0.25, gt=0, lt=1)
    seed: int = 42
    experiment: str | None = None


BRONZE_METADATA_COLUMNS: tuple[Column, ...] = (
    Column(name="_source", type="string", nullable=False, comment="source name from conf/"),
    Column(name="_source_file", type="string", comment="file the row came from"),
    Column(name="_batch_id", type="string", comment="file drop or API batch identifier"),
    Column(
        name="_ingested_at", type="timestamp", nullable=False, comment="when it landed in Bronze"
    ),
    Column(name="_run_id", type="string", nullable=False, comment="the job run that ingested it"),
    Column(
        name="_corrupt",
        type="string",
        comment="why the record could not be parsed (NULL when fine)",
    ),
    Column(
        name="_raw", type="string", comment="the raw record text, kept when it could not be parsed"
    ),
    Column(
        name="_rescued_data", type="string", comment="JSON of fields that did not fit the schema"
    ),
)


class ConfFile(StrictModel):
    """One file under conf/: any of the sections below."""

    catalog: CatalogSpec | None = None
    sources: dict[Identifier, FileSource] = Field(default_factory=dict)
    silver: dict[TableName, SilverSpec] = Field(default_factory=dict)
    gold: dict[TableName, GoldSpec] = Field(default_factory=dict)
    models: dict[Identifier, ModelSpec] = Field(default_factory=dict)
