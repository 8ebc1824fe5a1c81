"""The two kinds of config document: ``bundle.yml`` (targets, engines, variables, jobs) and
one ``conf/*.yml`` file.

Every model forbids unknown keys, so a typo is an error naming the file and key path
rather than a setting that is silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lakehouse.config.base import Identifier, StrictModel, TableName
from lakehouse.config.catalog import CatalogSpec, SecurableGrant, SecurableRowFilter
from lakehouse.config.declarative import PipelineResource
from lakehouse.config.jobs import Job, Permission, RunAs
from lakehouse.config.ml import ModelSpec, MonitoringSpec
from lakehouse.config.pipelines import GoldSpec, SilverSpec
from lakehouse.config.sources import Source


class BundleInfo(StrictModel):
    name: Identifier
    # Databricks only (accepted, listed by `bundle validate` as ignored locally)
    databricks_cli_version: str | None = Field(None, description="Databricks only")
    cluster_id: str | None = Field(None, description="Databricks only")
    compute_id: str | None = Field(None, description="Databricks only")
    git: dict[str, Any] | None = Field(None, description="Databricks only")
    deployment: dict[str, Any] | None = Field(None, description="Databricks only")
    uuid: str | None = Field(None, description="Databricks only")


LOOKUP_REFUSED = (
    "'lookup' resolves a Databricks object id and needs a workspace; for local runs give "
    "the variable a value (a target's variables, BUNDLE_VAR_{name} or --var {name}=...)"
)


class Variable(StrictModel):
    description: str = Field("", description="what the variable is for")
    type: Literal["complex"] | None = Field(
        None, description="complex: the default is a mapping or a list"
    )
    default: Any = Field(
        None,
        description="value when no target, BUNDLE_VAR_<name> / LAKEHOUSE_VAR_<name> or --var "
        "sets one (a scalar; a mapping or list with type: complex)",
    )
    lookup: dict[str, Any] | None = Field(
        None,
        description="Databricks object lookup: refused locally unless another source sets the value",
    )

    @model_validator(mode="after")
    def _complex_default(self) -> Variable:
        shaped = isinstance(self.default, dict | list)
        if shaped and self.type != "complex":
            raise ValueError("a mapping or list default needs 'type: complex'")
        if self.type == "complex" and self.default is not None and not shaped:
            raise ValueError("a complex variable's default is a mapping or a list")
        return self


class Workspace(StrictModel):
    """Databricks workspace settings: accepted; locally ``${workspace.*}`` have local values."""

    host: str | None = None
    profile: str | None = None
    root_path: str | None = None
    file_path: str | None = None
    artifact_path: str | None = None
    state_path: str | None = None
    resource_path: str | None = None
    auth_type: str | None = None
    client_id: str | None = None
    account_id: str | None = None
    azure_client_id: str | None = None
    azure_environment: str | None = None
    azure_login_app_id: str | None = None
    azure_tenant_id: str | None = None
    azure_use_msi: bool | None = None
    azure_workspace_resource_id: str | None = None
    google_service_account: str | None = None


class Presets(StrictModel):
    """Databricks presets applied to every resource of a target."""

    name_prefix: str | None = Field(None, description="prefix of resource names")
    pipelines_development: bool | None = Field(None, description="pipelines in development mode")
    trigger_pause_status: Literal["PAUSED", "UNPAUSED"] | None = Field(
        None, description="pause (or not) every schedule and trigger"
    )
    jobs_max_concurrent_runs: int | None = Field(None, ge=1)
    tags: dict[str, str] = Field(default_factory=dict, description="tags of every resource")
    source_linked_deployment: bool | None = Field(None, description="Databricks only")
    artifacts_dynamic_version: bool | None = Field(None, description="Databricks only")


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


SailMode = Literal["local", "local-cluster", "kubernetes-cluster"]


class SailKubernetes(StrictModel):
    """Where Sail's ``kubernetes-cluster`` mode starts its worker pods (Sail's ``kubernetes.*``
    settings). The driver is the pod running ``lakehouse``; see deploy/kubernetes."""

    image: str = Field(description="container image of the worker pods (the driver's image)")
    namespace: str = Field(
        "default",
        description="namespace the worker pods are created in (unset: $SAIL_KUBERNETES__NAMESPACE, "
        "e.g. the driver pod's own, else default)",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="image pull policy of the worker pods"
    )
    driver_pod_name: str = Field(
        "", description="the driver pod's name (owner of the worker pods); usually from the env"
    )
    worker_pod_name_prefix: str = Field("sail-worker-", description="name prefix of worker pods")
    worker_service_account_name: str = Field(
        "default", description="service account of the worker pods"
    )
    worker_pod_template: dict[str, Any] | None = Field(
        None, description="a Kubernetes PodTemplateSpec merged into every worker pod"
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
    mode: SailMode | None = Field(
        None,
        description="sail engine: local (one process), local-cluster (driver and workers in "
        "one process over RPC) or kubernetes-cluster (worker pods); default: $SAIL_MODE, else local",
    )
    workers: int | None = Field(
        None, ge=1, description="sail cluster modes: workers started with the driver (Sail: 4)"
    )
    max_workers: int | None = Field(
        None, ge=0, description="sail cluster modes: most workers at once (0: no limit)"
    )
    task_slots: int | None = Field(
        None, ge=1, description="sail cluster modes: tasks one worker runs at once (Sail: 8)"
    )
    kubernetes: SailKubernetes | None = Field(
        None, description="sail kubernetes-cluster mode: where the worker pods start"
    )
    sail: dict[str, str] = Field(
        default_factory=dict,
        description="any other Sail server setting by its dotted name (e.g. "
        "cluster.worker_max_idle_time_secs); read when the embedded server starts",
    )

    @model_validator(mode="after")
    def _sail_settings_for_sail(self) -> EngineSpec:
        sail_only = ("mode", "workers", "max_workers", "task_slots", "kubernetes", "sail")
        given = [key for key in sail_only if key in self.model_fields_set]
        if self.kind != "sail" and given:
            raise ValueError(f"{', '.join(given)}: only for engine kind 'sail' (got {self.kind!r})")
        if self.kubernetes is not None and self.mode != "kubernetes-cluster":
            raise ValueError("kubernetes: only with mode 'kubernetes-cluster'")
        if self.mode == "local" and (
            {"workers", "max_workers", "task_slots"} & self.model_fields_set
        ):
            raise ValueError("workers, max_workers and task_slots need a cluster mode")
        return self

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
        "development",
        description="development or production; in a databricks.yml bundle, development "
        "pauses schedules and triggers and prefixes names, as Databricks does",
    )
    engine: EngineSpec = Field(
        default_factory=EngineSpec, description="the Spark engine of this target"
    )
    variables: dict[str, Any] = Field(
        default_factory=dict,
        description="values for declared variables in this target (a value, or {default: ...})",
    )
    workspace: Workspace | None = Field(None, description="overrides the bundle's workspace")
    permissions: list[Permission] | None = Field(
        None, description="overrides the bundle's permissions"
    )
    presets: Presets | None = Field(None, description="overrides the bundle's presets")
    run_as: RunAs | None = Field(None, description="overrides the bundle's run_as")
    resources: dict[str, Any] = Field(
        default_factory=dict, description="merged over the bundle's resources for this target"
    )
    bundle: dict[str, Any] | None = Field(None, description="overrides of bundle settings")
    artifacts: dict[str, Any] | None = Field(None, description="Databricks only")
    sync: dict[str, Any] | None = Field(None, description="Databricks only")
    git: dict[str, Any] | None = Field(None, description="Databricks only")
    cluster_id: str | None = Field(None, description="Databricks only")
    compute_id: str | None = Field(None, description="Databricks only")


# resource kinds a bundle may declare that mean nothing locally (listed as ignored locally)
OTHER_RESOURCE_KINDS = (
    "alerts",
    "apps",
    "clusters",
    "dashboards",
    "database_catalogs",
    "database_instances",
    "experiments",
    "model_serving_endpoints",
    "models",
    "quality_monitors",
    "registered_models",
    "schemas",
    "secret_scopes",
    "sql_warehouses",
    "synced_database_tables",
    "volumes",
)


class Resources(StrictModel):
    jobs: dict[Identifier, Job] = Field(default_factory=dict)
    pipelines: dict[Identifier, PipelineResource] = Field(
        default_factory=dict, description="declarative pipelines (resources.pipelines)"
    )
    alerts: dict[str, dict[str, Any]] = Field(default_factory=dict)
    apps: dict[str, dict[str, Any]] = Field(default_factory=dict)
    clusters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = Field(default_factory=dict)
    database_catalogs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    database_instances: dict[str, dict[str, Any]] = Field(default_factory=dict)
    experiments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    model_serving_endpoints: dict[str, dict[str, Any]] = Field(default_factory=dict)
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    quality_monitors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    registered_models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    schemas: dict[str, dict[str, Any]] = Field(default_factory=dict)
    secret_scopes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    sql_warehouses: dict[str, dict[str, Any]] = Field(default_factory=dict)
    synced_database_tables: dict[str, dict[str, Any]] = Field(default_factory=dict)
    volumes: dict[str, dict[str, Any]] = Field(default_factory=dict)


class BundleSpec(StrictModel):
    bundle: BundleInfo = Field(
        description="bundle identity: name, the MLflow experiment prefix and ${bundle.name}"
    )
    run_as: RunAs | None = Field(
        default=None, description="identity for jobs and, by default, for CLI commands"
    )
    include: list[str] = Field(
        default_factory=list,
        description="glob patterns of included files, relative to the bundle file: conf files "
        "(catalog, sources, silver, gold, models ...) and/or bundle fragments (resources, "
        "variables, targets ...); a pattern matching no file is an error",
    )
    variables: dict[Identifier, Variable] = Field(
        default_factory=dict,
        description="declared variables; a variable with no value from any source is an error",
    )
    targets: dict[Identifier, Target] = Field(min_length=1)
    resources: Resources = Field(
        default_factory=Resources, description="the jobs and declarative pipelines"
    )
    workspace: Workspace | None = Field(
        None, description="Databricks workspace (locally ${workspace.*} get local values)"
    )
    permissions: list[Permission] = Field(
        default_factory=list, description="permissions applied to every job and pipeline"
    )
    presets: Presets | None = Field(None, description="presets applied to every resource")
    artifacts: dict[str, Any] | None = Field(None, description="Databricks only (build commands)")
    sync: dict[str, Any] | None = Field(None, description="Databricks only")
    experimental: dict[str, Any] | None = Field(None, description="Databricks only")
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
    row_filters: list[SecurableRowFilter] = Field(
        default_factory=list, description="row filters on catalog tables by name"
    )
