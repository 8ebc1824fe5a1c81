"""The resolved project: :class:`Project` (one target of a bundle), its :class:`TableRef`\\ s
and the typed handles of its Silver and Gold tables (built once, when the project loads)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakehouse.config.bundle_spec import BundleSpec, EngineSpec, Target
from lakehouse.config.catalog import CatalogSpec, SecurableGrant, TableSpec
from lakehouse.config.ml import ModelSpec, MonitoringSpec
from lakehouse.config.pipelines import GoldSpec, SilverSpec
from lakehouse.config.sources import FileSource, HttpSource
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

    @property
    def name(self) -> str:
        return self.bundle.bundle.name

    @property
    def data_root(self) -> Path:
        """Where the project keeps its local state (tables default under it, MLflow, logs)."""
        return Path(self.resolve_path(str(self.variables.get("data_root", "./data"))))

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
