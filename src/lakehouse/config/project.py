"""The resolved project: :class:`Project` (one target of a bundle), its :class:`TableRef`\\ s
and the typed handles of its sources, Silver and Gold tables and models (built once, when the
project loads)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakehouse.config.base import BUNDLE_FILE
from lakehouse.config.bundle_spec import BundleSpec, EngineSpec, Presets, Target
from lakehouse.config.catalog import CatalogSpec, SchemaSpec, SecurableGrant, TableSpec
from lakehouse.config.declarative import PipelineResource
from lakehouse.config.ml import FeatureLookup, ModelSpec, MonitoringSpec
from lakehouse.config.pipelines import GoldSpec, SilverSpec
from lakehouse.config.sources import FileSource, HttpSource
from lakehouse.config.system_tables import SystemTable, system_table_name
from lakehouse.core.errors import ConfigError

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def resolve_path(root: Path, path: str) -> str:
    """Absolute path for a relative one (relative to ``root``); URIs unchanged."""
    if _URI.match(path) or path.startswith("file:"):
        return path
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (root / p).resolve())


@dataclass(frozen=True)
class TableRef:
    """A catalog table resolved to its three-level name and storage location."""

    catalog: str
    schema: str
    name: str
    spec: TableSpec
    location: str

    @property
    def full_name(self) -> str:
        return f"{self.catalog}.{self.schema}.{self.name}"

    @property
    def engine_name(self) -> str:
        """The name registered in the Spark session: ``schema.table`` in its current catalog."""
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class SilverHandle:
    """A Silver table with what refining it needs: its spec, Bronze source, quarantine, keys."""

    table: TableRef
    spec: SilverSpec
    source: TableRef
    quarantine: TableRef
    keys: tuple[str, ...]

    @property
    def name(self) -> str:
        """The table's ``catalog.schema.table`` (its key in ``conf/``)."""
        return self.table.full_name


@dataclass(frozen=True)
class GoldHandle:
    """A Gold table with its spec and the tables its inputs read (in the spec's order)."""

    table: TableRef
    spec: GoldSpec
    upstream: tuple[TableRef, ...]

    @property
    def name(self) -> str:
        """The table's ``catalog.schema.table`` (its key in ``conf/``)."""
        return self.table.full_name

    @property
    def inputs(self) -> dict[str, TableRef]:
        """The input tables by the alias the transform or query knows them by."""
        return dict(zip(self.spec.inputs, self.upstream, strict=True))


@dataclass(frozen=True)
class SourceHandle:
    """A configured source with the Bronze table it lands in."""

    name: str
    spec: FileSource | HttpSource
    target: TableRef


@dataclass(frozen=True)
class FeatureTable:
    """A table a model reads features from, with the keys it is looked up by (its catalog
    keys minus its timestamp key) and its timestamp key (None: not a time series)."""

    table: TableRef
    keys: tuple[str, ...]
    timestamp_key: str | None


@dataclass(frozen=True)
class FeatureSource:
    """One feature lookup of a model's training set, its table resolved."""

    spec: FeatureLookup
    source: FeatureTable

    @property
    def label_keys(self) -> list[str]:
        """The label columns matched to the table's keys (default: the same names)."""
        return list(self.spec.lookup_keys or self.source.keys)


@dataclass(frozen=True)
class ScoringHandle:
    """What batch scoring reads and writes: the input feature table and the predictions
    table, with the label columns that match the input's keys (to join labels to scores)."""

    input: FeatureTable
    output: TableRef
    label_keys: tuple[str, ...]


@dataclass(frozen=True)
class ModelHandle:
    """A configured model with the tables its training set, scoring and monitoring read."""

    name: str
    spec: ModelSpec
    labels: TableRef
    features: tuple[FeatureSource, ...]  # in the spec's order
    scoring: ScoringHandle | None

    @property
    def registered_name(self) -> str:
        return self.spec.registered_name

    @property
    def inputs(self) -> tuple[TableRef, ...]:
        """The tables a training set reads: the label table, then each feature table once."""
        refs = {self.labels.full_name: self.labels}
        for feature in self.features:
            refs.setdefault(feature.source.table.full_name, feature.source.table)
        return tuple(refs.values())


@dataclass(frozen=True)
class Project:
    """Everything loaded from a bundle, for one target."""

    root: Path
    bundle: BundleSpec
    target_name: str
    target: Target
    engine: EngineSpec
    variables: dict[str, Any]
    catalog: CatalogSpec
    tables: dict[str, TableRef]
    sources: dict[str, FileSource | HttpSource] = field(default_factory=dict)
    silver: dict[str, SilverSpec] = field(default_factory=dict)
    gold: dict[str, GoldSpec] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    grants: list[SecurableGrant] = field(default_factory=list)
    monitoring: MonitoringSpec = field(default_factory=MonitoringSpec)
    quarantines: dict[str, str] = field(default_factory=dict)  # Silver table -> its quarantine
    silver_handles: dict[str, SilverHandle] = field(default_factory=dict)
    gold_handles: dict[str, GoldHandle] = field(default_factory=dict)
    source_handles: dict[str, SourceHandle] = field(default_factory=dict)
    model_handles: dict[str, ModelHandle] = field(default_factory=dict)
    bundle_file: str = BUNDLE_FILE  # the root file's name: databricks.yml, bundle.yml ...
    dab: bool = False  # a databricks.yml / databricks.yaml bundle
    presets: Presets = field(default_factory=Presets)  # in force for the target (mode applied)
    ignored: tuple[str, ...] = ()  # Databricks-only key paths set (see config.dab.ignored_keys)
    default_data_root: str = "./data"  # without a data_root variable (./.lakehouse for DAB)
    resource_files: dict[str, str] = field(default_factory=dict)  # "resources.jobs.x" -> file
    added_tables: list[str] = field(default_factory=list)  # by add_table (config.runtime_tables)

    @property
    def name(self) -> str:
        return self.bundle.bundle.name

    @property
    def data_root(self) -> Path:
        """Where the project keeps its local state (tables default under it, MLflow, logs)."""
        default = self.default_data_root
        return Path(self.resolve_path(str(self.variables.get("data_root", default))))

    @property
    def schedules_paused(self) -> bool:
        """Whether schedules and triggers are paused for this target: presets'
        ``trigger_pause_status: PAUSED``, or ``mode: development`` in a databricks.yml bundle
        (unless the presets say UNPAUSED), as Databricks does. The loader already set
        ``pause_status: PAUSED`` on every schedule (and trigger) that does not set its own
        ``pause_status``, so a job's ``schedule.pause_status`` is the one to read."""
        return self.presets.trigger_pause_status == "PAUSED"

    @property
    def name_prefix(self) -> str:
        """The prefix of resource names for this target (``[dev <user>] `` in development)."""
        return self.presets.name_prefix or ""

    @property
    def pipelines(self) -> dict[str, PipelineResource]:
        """The declarative pipelines (``resources.pipelines``) by key."""
        return dict(self.bundle.resources.pipelines)

    def file_of(self, key: str) -> str:
        """The file declaring ``resources.<kind>.<key>`` (default: the bundle file)."""
        return self.resource_files.get(key, self.bundle_file)

    def add_table(self, full_name: str, spec: TableSpec) -> TableRef:
        """Add a table found at run time (a pipeline's dataset). In the project's catalog
        its schema is created on demand and its location is ``spec.location`` or
        ``<storage_root>/<schema>/<table>``; a table of another catalog lies at
        ``<storage_root>/<catalog>/<schema>/<table>``. A table already known is returned."""
        if full_name in self.tables:
            return self.tables[full_name]
        parts = full_name.split(".")
        if len(parts) != 3 or not all(parts):
            raise ConfigError(self.bundle_file, full_name, "expected catalog.schema.table")
        catalog_name, schema_name, table_name = parts
        storage_root = self.resolve_path(self.catalog.storage_root).rstrip("/")
        folder = (
            f"{storage_root}/{schema_name}"
            if catalog_name == self.catalog.name
            else f"{storage_root}/{catalog_name}/{schema_name}"
        )
        location = self.resolve_path(spec.location) if spec.location else f"{folder}/{table_name}"
        if catalog_name == self.catalog.name:
            schema = self.catalog.schemas.get(schema_name, SchemaSpec())
            schema = schema.model_copy(update={"tables": {**schema.tables, table_name: spec}})
            catalog = self.catalog.model_copy(
                update={"schemas": {**self.catalog.schemas, schema_name: schema}}
            )
            object.__setattr__(self, "catalog", catalog)  # frozen: the catalog grows at run time
        ref = TableRef(catalog_name, schema_name, table_name, spec, location)
        self.tables[full_name] = ref
        self.added_tables.append(full_name)
        return ref

    def resolve_path(self, path: str) -> str:
        """Absolute path for a relative one (relative to the bundle root); URIs unchanged."""
        return resolve_path(self.root, path)

    def table(self, full_name: str) -> TableRef:
        """Look up a catalog table by ``catalog.schema.table``."""
        try:
            return self.tables[full_name]
        except KeyError:
            known = ", ".join(sorted(self.tables)) or "none"
            raise ConfigError(
                "conf/", full_name, f"no such table in the catalog (known: {known})"
            ) from None

    def system_table(self, table: SystemTable) -> TableRef:
        """The handle of one of the project's ``meta`` system tables."""
        return self.table(system_table_name(self.catalog.name, table))

    def source_handle(self, name: str) -> SourceHandle:
        """The handle of a configured source."""
        try:
            return self.source_handles[name]
        except KeyError:
            known = ", ".join(sorted(self.source_handles)) or "none"
            raise ConfigError("conf/", name, f"no such source (known: {known})") from None

    def model_handle(self, name: str) -> ModelHandle:
        """The handle of a configured model."""
        try:
            return self.model_handles[name]
        except KeyError:
            known = ", ".join(sorted(self.model_handles)) or "none"
            raise ConfigError("conf/", name, f"no such model (known: {known})") from None

    def silver_handle(self, name: str) -> SilverHandle:
        """The handle of a configured Silver table."""
        try:
            return self.silver_handles[name]
        except KeyError:
            known = ", ".join(sorted(self.silver_handles)) or "none"
            raise ConfigError("conf/", name, f"no such Silver table (known: {known})") from None

    def gold_handle(self, name: str) -> GoldHandle:
        """The handle of a configured Gold table."""
        try:
            return self.gold_handles[name]
        except KeyError:
            known = ", ".join(sorted(self.gold_handles)) or "none"
            raise ConfigError("conf/", name, f"no such Gold table (known: {known})") from None

    def quarantine_table(self, silver_table: str) -> str:
        """The quarantine table of a configured Silver table."""
        try:
            return self.quarantines[silver_table]
        except KeyError:
            known = ", ".join(sorted(self.quarantines)) or "none"
            raise ConfigError(
                "conf/", silver_table, f"no Silver table with a quarantine (known: {known})"
            ) from None

    def quarantined_table(self, table: str) -> str | None:
        """The Silver table whose quarantine ``table`` is, if it is one."""
        return next((s for s, q in self.quarantines.items() if q == table), None)


def feature_timestamp_key(project: Project, table: str) -> str | None:
    """The timestamp key of a Gold feature table (None for a table without one)."""
    gold = project.gold.get(table)
    return gold.timestamp_key if gold is not None else None


def feature_lookup_keys(project: Project, table: str) -> list[str]:
    """The keys a feature table is looked up by: its catalog keys minus the timestamp key."""
    ts = feature_timestamp_key(project, table)
    return [k for k in project.table(table).spec.keys if k != ts]
