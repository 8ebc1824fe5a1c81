"""The two kinds of config document: ``bundle.yml`` (targets, engines, variables, jobs) and
one ``conf/*.yml`` file.

Every model forbids unknown keys, so a typo is an error naming the file and key path
rather than a setting that is silently ignored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from lakehouse.config.base import Identifier, StrictModel, TableName
from lakehouse.config.catalog import CatalogSpec, SecurableGrant
from lakehouse.config.jobs import Job, RunAs
from lakehouse.config.ml import ModelSpec, MonitoringSpec
from lakehouse.config.pipelines import GoldSpec, SilverSpec
from lakehouse.config.sources import Source


class BundleInfo(StrictModel):
    name: Identifier


class Variable(StrictModel):
    description: str = Field("", description="what the variable is for")
    default: str | int | float | bool | None = Field(
        None, description="value when no target, LAKEHOUSE_VAR_<name> or --var sets one"
    )


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
    kind: Literal["sail", "spark", "connect"] = Field(
        "sail", description="sail (embedded), spark (JVM + delta-spark) or connect (Spark Connect)"
    )
    master: str = Field("local[*]", description="JVM master URL (spark engine)")
    remote: str | None = Field(default=None, description="sc://host:port for the connect engine")
    conf: dict[str, str] = Field(
        default_factory=dict,
        description="Spark conf strings passed to the session builder; they win over the project's defaults",
    )
    delta: DeltaJars = Field(
        default_factory=DeltaJars, description="where JVM Spark gets the Delta jars"
    )

    @model_validator(mode="after")
    def _remote_for_connect(self) -> EngineSpec:
        if self.kind == "connect" and not self.remote:
            raise ValueError("engine kind 'connect' needs 'remote: sc://host:port'")
        if self.remote is not None and not self.remote.startswith("sc://"):
            raise ValueError(f"remote must start with sc:// (got {self.remote!r})")
        return self


class Target(StrictModel):
    default: bool = Field(
        False, description="the target used when none is given; at most one target may set it"
    )
    mode: Literal["development", "production"] = Field(
        "development", description="development or production"
    )
    engine: EngineSpec = Field(
        default_factory=EngineSpec, description="the Spark engine of this target"
    )
    variables: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="values for declared variables in this target"
    )


class Resources(StrictModel):
    jobs: dict[Identifier, Job] = Field(default_factory=dict)


class BundleSpec(StrictModel):
    bundle: BundleInfo = Field(
        description="bundle identity: name, the MLflow experiment prefix and ${bundle.name}"
    )
    run_as: RunAs | None = Field(
        default=None, description="identity for jobs and, by default, for CLI commands"
    )
    include: list[str] = Field(
        default_factory=list,
        description="glob patterns of conf files, relative to bundle.yml; a pattern matching no file is an error",
    )
    variables: dict[Identifier, Variable] = Field(
        default_factory=dict,
        description="declared variables; a variable with no value from any source is an error",
    )
    targets: dict[Identifier, Target] = Field(min_length=1)
    resources: Resources = Field(default_factory=Resources, description="the jobs")
    allowed_external_paths: list[str] = Field(
        default_factory=list,
        description="opt-in: directories (or URI prefixes) outside the project and the data "
        "root that table locations, landing paths and python_file may point into",
    )

    @field_validator("targets")
    @classmethod
    def _one_default(cls, targets: dict[str, Target]) -> dict[str, Target]:
        defaults = [name for name, t in targets.items() if t.default]
        if len(defaults) > 1:
            raise ValueError(f"only one target may set default: true (found {', '.join(defaults)})")
        return targets


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
