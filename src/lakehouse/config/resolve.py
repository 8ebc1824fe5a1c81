"""Assemble the resolved :class:`Project` from the validated ``conf/*.yml`` files.

Merges the files' sections (an entry declared twice is an error), adds the generated tables
(Bronze metadata columns, SCD2 columns, a quarantine per Silver table, the system tables,
a predictions table per scored model), resolves every table's location, validates
references and governance, then builds the handles of the sources, Silver and Gold tables and
models (once, for the project).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from lakehouse.config.base import BUNDLE_FILE, IDENTIFIER
from lakehouse.config.bundle_spec import BundleSpec, ConfFile, EngineSpec, Presets, Target
from lakehouse.config.catalog import (
    CatalogSpec,
    Column,
    Grant,
    Principals,
    SchemaSpec,
    SecurableGrant,
    SecurableRowFilter,
    TableSpec,
)
from lakehouse.config.local_values import current_user
from lakehouse.config.locations import check_locations
from lakehouse.config.ml import ModelSpec, MonitoringSpec
from lakehouse.config.pipelines import GoldSpec, SilverSpec
from lakehouse.config.project import (
    FeatureSource,
    FeatureTable,
    GoldHandle,
    ModelHandle,
    Project,
    ScoringHandle,
    SilverHandle,
    SourceHandle,
    TableRef,
    feature_lookup_keys,
    feature_timestamp_key,
    resolve_path,
)
from lakehouse.config.runtime_tables import load_runtime_tables
from lakehouse.config.sources import BRONZE_METADATA_COLUMNS, FileSource, HttpSource
from lakehouse.config.system_tables import (
    QUARANTINE_SUFFIX,
    SYSTEM_SCHEMA,
    quarantine_spec,
    system_table_specs,
)
from lakehouse.config.validate import (
    check_governance,
    check_references,
    with_external_row_filters,
)
from lakehouse.core.errors import ConfigError

S = TypeVar("S")


@dataclass(frozen=True)
class LoadedBundle:
    """What ``bundle.yml`` resolved to for one target, before the conf files are merged."""

    root: Path
    bundle: BundleSpec
    target_name: str
    target: Target
    engine: EngineSpec
    variables: dict[str, Any]
    bundle_file: str = BUNDLE_FILE
    dab: bool = False
    presets: Presets = field(default_factory=Presets)
    ignored: tuple[str, ...] = ()
    resource_files: dict[str, str] = field(default_factory=dict)

    @property
    def default_data_root(self) -> str:
        """The data root without a ``data_root`` variable: ./.lakehouse in a DAB project."""
        return "./.lakehouse" if self.dab else "./data"


@dataclass
class _Merged:
    """The conf files' sections merged, with the file each entry came from."""

    catalog: CatalogSpec | None = None
    catalog_file: str = ""
    schemas: dict[str, SchemaSpec] = field(default_factory=dict)
    sources: dict[str, FileSource | HttpSource] = field(default_factory=dict)
    silver: dict[str, SilverSpec] = field(default_factory=dict)
    gold: dict[str, GoldSpec] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # "section.key" -> file
    external_grants: list[tuple[SecurableGrant, str]] = field(default_factory=list)
    external_row_filters: list[tuple[SecurableRowFilter, str]] = field(default_factory=list)
    monitoring: MonitoringSpec = field(default_factory=MonitoringSpec)

    def add(self, rel: str, conf: ConfFile) -> None:
        """Merge one conf file (``rel``: its path relative to the bundle root)."""
        if conf.catalog is not None:
            self._add_catalog(rel, conf.catalog)
        _merge_section("sources", self.sources, conf.sources, rel, self.origin)
        _merge_section("silver", self.silver, conf.silver, rel, self.origin)
        _merge_section("gold", self.gold, conf.gold, rel, self.origin)
        _merge_section("models", self.models, conf.models, rel, self.origin)
        if conf.monitoring is not None:
            self.monitoring = _merge_monitoring(self.monitoring, conf.monitoring, rel, self.origin)
        self.external_grants.extend((g, rel) for g in conf.grants)
        self.external_row_filters.extend((f, rel) for f in conf.row_filters)

    def _add_catalog(self, rel: str, catalog: CatalogSpec) -> None:
        if self.catalog is None:
            self.catalog, self.catalog_file = catalog, rel
        elif catalog.name != self.catalog.name or catalog.storage_root != self.catalog.storage_root:
            raise ConfigError(
                rel, "catalog.name", f"differs from the catalog declared in {self.catalog_file}"
            )
        else:
            self.catalog = _merge_catalog_governance(self.catalog, catalog, rel, self.catalog_file)
        for schema_name, schema in catalog.schemas.items():
            self.origin.setdefault(f"schema.{schema_name}", rel)
            earlier = self.schemas.get(schema_name)
            self.schemas[schema_name] = (
                schema
                if earlier is None
                else _merge_schema(earlier, schema, schema_name, rel, self.origin)
            )
            for table_name in schema.tables:
                self.origin.setdefault(f"table.{schema_name}.{table_name}", rel)


def _merge_schema(
    earlier: SchemaSpec, schema: SchemaSpec, schema_name: str, rel: str, origin: dict[str, str]
) -> SchemaSpec:
    """A schema declared again in another file: its tables added, its owner the same."""
    merged = dict(earlier.tables)
    for table_name, table in schema.tables.items():
        if table_name in merged:
            raise ConfigError(
                rel,
                f"catalog.schemas.{schema_name}.tables.{table_name}",
                f"already declared in {origin[f'table.{schema_name}.{table_name}']}",
            )
        merged[table_name] = table
    if schema.owner and earlier.owner and schema.owner != earlier.owner:
        raise ConfigError(
            rel,
            f"catalog.schemas.{schema_name}.owner",
            f"differs from the owner declared in {origin[f'schema.{schema_name}']}",
        )
    return earlier.model_copy(
        update={
            "tables": merged,
            "owner": earlier.owner or schema.owner,
            "grants": [*earlier.grants, *schema.grants],
            "tags": {**earlier.tags, **schema.tags},
        }
    )


def _merge_section(
    section: str, merged: dict[str, S], items: dict[str, S], rel: str, origin: dict[str, str]
) -> None:
    """Add one file's entries of a section; an entry declared in two files is an error."""
    for key, value in items.items():
        if key in merged:
            raise ConfigError(
                rel, f"{section}.{key}", f"already declared in {origin[f'{section}.{key}']}"
            )
        merged[key] = value
        origin[f"{section}.{key}"] = rel


def _merge_monitoring(
    merged: MonitoringSpec, spec: MonitoringSpec, rel: str, origin: dict[str, str]
) -> MonitoringSpec:
    """Add one file's ``monitoring:`` section; a model or webhook set in two files is an error."""
    models = dict(merged.models)
    _merge_section("monitoring.models", models, spec.models, rel, origin)
    update: dict[str, Any] = {"models": models}
    if spec.webhook_url:
        if merged.webhook_url:
            raise ConfigError(
                rel,
                "monitoring.webhook_url",
                f"already set in {origin['monitoring.webhook_url']}",
            )
        origin["monitoring.webhook_url"] = rel
        update.update(webhook_url=spec.webhook_url, webhook_timeout_s=spec.webhook_timeout_s)
    return merged.model_copy(update=update)


def _merge_catalog_governance(
    catalog: CatalogSpec, other: CatalogSpec, rel: str, first_file: str
) -> CatalogSpec:
    """Principals, grants and owner of a catalog declared again in another conf file."""
    if other.owner and catalog.owner and other.owner != catalog.owner:
        raise ConfigError(rel, "catalog.owner", f"differs from the owner declared in {first_file}")
    groups = dict(catalog.principals.groups)
    for group, members in other.principals.groups.items():
        groups[group] = sorted({*groups.get(group, []), *members})
    principals = catalog.principals.model_copy(
        update={
            "users": sorted({*catalog.principals.users, *other.principals.users}),
            "service_principals": sorted(
                {*catalog.principals.service_principals, *other.principals.service_principals}
            ),
            "groups": groups,
        }
    )
    return catalog.model_copy(
        update={
            "owner": catalog.owner or other.owner,
            "principals": principals,
            "grants": [*catalog.grants, *other.grants],
        }
    )


# ---------------------------------------------------------------- the project


def assemble(loaded: LoadedBundle, confs: list[tuple[str, ConfFile]]) -> Project:
    """Merge the conf files (``(relative path, file)``), add generated tables, validate."""
    merged = _Merged()
    for rel, conf in confs:
        merged.add(rel, conf)
    if merged.catalog is None:
        if not (loaded.dab or loaded.bundle.resources.pipelines):
            raise ConfigError(loaded.bundle_file, "include", "no included file declares 'catalog:'")
        merged.add(loaded.bundle_file, ConfFile(catalog=implicit_catalog(loaded)))
    assert merged.catalog is not None
    name = merged.catalog.name
    schemas = _with_generated_tables(merged.schemas, merged.silver, name)
    schemas = _with_prediction_tables(schemas, merged.gold, merged.models, name)
    catalog = merged.catalog.model_copy(update={"schemas": schemas})
    catalog = with_external_row_filters(catalog, merged.external_row_filters)
    tables = _table_refs(loaded.root, catalog)
    project = Project(
        root=loaded.root,
        bundle=loaded.bundle,
        target_name=loaded.target_name,
        target=loaded.target,
        engine=loaded.engine,
        variables=loaded.variables,
        catalog=catalog,
        tables=tables,
        sources=merged.sources,
        silver=merged.silver,
        gold=merged.gold,
        models=merged.models,
        grants=[g for g, _ in merged.external_grants],
        monitoring=merged.monitoring,
        quarantines={s: s + QUARANTINE_SUFFIX for s in merged.silver if s in tables},
        bundle_file=loaded.bundle_file,
        dab=loaded.dab,
        presets=loaded.presets,
        ignored=loaded.ignored,
        default_data_root=loaded.default_data_root,
        resource_files=loaded.resource_files,
    )
    check_references(project, merged.origin)
    check_governance(project, merged.origin, merged.catalog_file, merged.external_grants)
    check_locations(project, merged.origin, merged.catalog_file)
    load_runtime_tables(project)  # tables earlier runs added (pipeline datasets)
    return replace(
        project,
        silver_handles=_silver_handles(project),
        gold_handles=_gold_handles(project),
        source_handles={
            name: SourceHandle(name, spec, project.tables[spec.target])
            for name, spec in project.sources.items()
        },
        model_handles={
            name: _model_handle(project, name, spec) for name, spec in project.models.items()
        },
    )


def implicit_catalog(loaded: LoadedBundle) -> CatalogSpec:
    """The catalog of a bundle without a ``catalog:`` conf (a Databricks project): named
    after its pipelines' catalog when they agree (else ``main``), tables under
    ``<data_root>/tables``, owned by the bundle's ``run_as`` (else the OS user); every
    identity the bundle runs as holds ALL PRIVILEGES; schemas are created on demand."""
    pipelines = list(loaded.bundle.resources.pipelines.values())
    names = {p.catalog for p in pipelines if p.catalog}
    name = names.pop() if len(names) == 1 else "main"
    if not re.match(IDENTIFIER, name):
        name = "main"
    data_root = str(loaded.variables.get("data_root", loaded.default_data_root))
    storage_root = resolve_path(loaded.root, data_root).rstrip("/") + "/tables"
    wanted = [p.schema_name for p in pipelines if p.schema_name and (p.catalog or name) == name]
    wanted += [  # resources.schemas of the catalog (their grants mean something on Databricks)
        str(s.get("name"))
        for s in loaded.bundle.resources.schemas.values()
        if s.get("catalog_name") == name and s.get("name")
    ]
    schemas = {s: SchemaSpec() for s in wanted if re.match(IDENTIFIER, s)}
    principals, runners = _bundle_principals(loaded.bundle)
    owner = loaded.bundle.run_as.principal if loaded.bundle.run_as else current_user()
    runners.update({owner, current_user()})
    principals.setdefault("users", set()).update(
        r for r in runners if r not in principals.get("service_principals", set())
    )
    return CatalogSpec(
        name=name,
        storage_root=storage_root,
        owner=owner,
        principals=Principals(
            users=sorted(principals.get("users", set())),
            service_principals=sorted(principals.get("service_principals", set())),
            groups={g: [] for g in sorted(principals.get("groups", set()))},
        ),
        grants=[Grant(principal=r, privileges=["ALL PRIVILEGES"]) for r in sorted(runners)],
        schemas=schemas,
    )


def _principal_entries(bundle: BundleSpec) -> Iterator[tuple[Any, bool]]:
    """Every run_as (True) and permission (False) entry of the bundle."""
    yield bundle.run_as, True
    yield from ((p, False) for p in bundle.permissions)
    for job in bundle.resources.jobs.values():
        yield job.run_as, True
        yield from ((t.run_as, True) for t in job.tasks)
        yield from ((p, False) for p in job.permissions)
    for pipeline in bundle.resources.pipelines.values():
        yield from ((p, False) for p in pipeline.permissions)


def _bundle_principals(bundle: BundleSpec) -> tuple[dict[str, set[str]], set[str]]:
    """Principals the bundle names (by kind), and those it runs as."""
    kinds: dict[str, set[str]] = {}
    runners: set[str] = set()
    fields = (
        ("user_name", "users"),
        ("service_principal_name", "service_principals"),
        ("group_name", "groups"),
    )
    for entry, runs in _principal_entries(bundle):
        data = entry.model_dump() if hasattr(entry, "model_dump") else entry
        for key, kind in fields:
            if isinstance(data, dict) and data.get(key):
                kinds.setdefault(kind, set()).add(str(data[key]))
                if runs:
                    runners.add(str(data[key]))
    return kinds, runners


def _silver_handles(project: Project) -> dict[str, SilverHandle]:
    """A handle per Silver table (its references checked already)."""
    tables = project.tables
    return {
        name: SilverHandle(
            table=tables[name],
            spec=spec,
            source=tables[spec.source],
            quarantine=tables[project.quarantines[name]],
            keys=tuple(spec.keys),
        )
        for name, spec in project.silver.items()
    }


def _gold_handles(project: Project) -> dict[str, GoldHandle]:
    """A handle per Gold table, its upstream the tables of its inputs (references checked)."""
    tables = project.tables
    return {
        name: GoldHandle(tables[name], spec, tuple(tables[t] for t in spec.inputs.values()))
        for name, spec in project.gold.items()
    }


def _feature_table(project: Project, table: str) -> FeatureTable:
    """A feature table with its lookup keys and timestamp key (references checked)."""
    return FeatureTable(
        project.tables[table],
        tuple(feature_lookup_keys(project, table)),
        feature_timestamp_key(project, table),
    )


def _model_handle(project: Project, name: str, spec: ModelSpec) -> ModelHandle:
    """A model's handle: its label, feature, scoring input and predictions tables."""
    features = tuple(
        FeatureSource(lookup, _feature_table(project, lookup.table))
        for lookup in spec.training_set.features
    )
    scoring = None
    if spec.scoring is not None:
        source = _feature_table(project, spec.scoring.input)
        label_keys: list[str] = list(spec.training_set.labels.keys)
        for feature in features:
            if feature.spec.table == spec.scoring.input:
                label_keys = feature.label_keys
        scoring = ScoringHandle(source, project.tables[spec.scoring.output], tuple(label_keys))
    return ModelHandle(
        name, spec, project.tables[spec.training_set.labels.table], features, scoring
    )


def _table_refs(root: Path, catalog: CatalogSpec) -> dict[str, TableRef]:
    """Every table of the catalog by full name, at its declared or default location."""
    storage_root = resolve_path(root, catalog.storage_root)
    tables: dict[str, TableRef] = {}
    for schema_name, schema in catalog.schemas.items():
        for table_name, spec in schema.tables.items():
            location = (
                resolve_path(root, spec.location)
                if spec.location
                else f"{storage_root.rstrip('/')}/{schema_name}/{table_name}"
            )
            ref = TableRef(catalog.name, schema_name, table_name, spec, location)
            tables[ref.full_name] = ref
    return tables


# ---------------------------------------------------------------- generated tables


def _with_generated_tables(
    schemas: dict[str, SchemaSpec], silver: dict[str, SilverSpec], catalog: str
) -> dict[str, SchemaSpec]:
    """Add Bronze metadata columns, a quarantine table per Silver table, the system tables."""
    out = {name: _with_bronze_metadata(schema) for name, schema in schemas.items()}
    for full_name, silver_spec in silver.items():
        cat, schema_name, table_name = full_name.split(".")
        if cat != catalog or schema_name not in out or table_name not in out[schema_name].tables:
            continue  # reported by check_references
        if silver_spec.mode == "scd2":
            out[schema_name] = _with_scd2_columns(out[schema_name], table_name, silver_spec)
        quarantine = table_name + QUARANTINE_SUFFIX
        out[schema_name] = _with_table(out[schema_name], quarantine, quarantine_spec(full_name))
    system = out.get(SYSTEM_SCHEMA, SchemaSpec(description="lakehouse bookkeeping"))
    for name, spec in system_table_specs().items():
        system = _with_table(system, name, spec)
    out[SYSTEM_SCHEMA] = system
    return out


def _with_table(schema: SchemaSpec, name: str, spec: TableSpec) -> SchemaSpec:
    """``schema`` with the table ``name`` added, unless the catalog declares it."""
    if name in schema.tables:
        return schema
    return schema.model_copy(update={"tables": {**schema.tables, name: spec}})


def _with_bronze_metadata(schema: SchemaSpec) -> SchemaSpec:
    """Bronze tables get the metadata columns they do not declare (a table declaring no
    columns takes them all from its data: inferred, or an existing Delta table's log)."""
    tables = {}
    for table_name, spec in schema.tables.items():
        if spec.layer == "bronze" and spec.columns:  # none declared: taken from the data
            declared = {c.name for c in spec.columns}
            extra = [c for c in BRONZE_METADATA_COLUMNS if c.name not in declared]
            spec = spec.model_copy(update={"columns": [*spec.columns, *extra]})
        tables[table_name] = spec
    return schema.model_copy(update={"tables": tables})


def _with_scd2_columns(schema: SchemaSpec, table_name: str, spec: SilverSpec) -> SchemaSpec:
    """An SCD2 table gets valid_from / valid_to (the sequence column's type) and is_current."""
    table = schema.tables[table_name]
    keys = list(table.keys) if "valid_from" in table.keys else [*table.keys, "valid_from"]
    if not table.columns:  # derived columns: the refine step adds them, typed like the data
        table = table.model_copy(update={"keys": keys})
        return schema.model_copy(update={"tables": {**schema.tables, table_name: table}})
    types = {c.name: c.type for c in table.columns}
    seq_type = types.get(spec.sequence_by or "", "timestamp")
    wanted = [
        # No column comments here: Sail fails SCD2 MERGE plans over columns with metadata.
        Column(name="valid_from", type=seq_type, nullable=False),
        Column(name="valid_to", type=seq_type),
        Column(name="is_current", type="boolean", nullable=False),
    ]
    extra = [c for c in wanted if c.name not in types]
    table = table.model_copy(update={"columns": [*table.columns, *extra], "keys": keys})
    return schema.model_copy(update={"tables": {**schema.tables, table_name: table}})


def _with_prediction_tables(
    schemas: dict[str, SchemaSpec],
    gold: dict[str, GoldSpec],
    models: dict[str, ModelSpec],
    catalog: str,
) -> dict[str, SchemaSpec]:
    """A Gold predictions table per scored model, unless the catalog declares it."""
    for model in models.values():
        if model.scoring is None:
            continue
        parts = model.scoring.output.split(".")
        in_parts = model.scoring.input.split(".")
        if parts[0] != catalog or in_parts[0] != catalog:
            continue  # reported by check_references
        source = schemas.get(in_parts[1], SchemaSpec()).tables.get(in_parts[2])
        schema = schemas.get(parts[1])
        if source is None or schema is None or parts[2] in schema.tables:
            continue
        ts_key = gold[model.scoring.input].timestamp_key if model.scoring.input in gold else None
        table = _predictions_spec(model, source, ts_key)
        schemas = {**schemas, parts[1]: _with_table(schema, parts[2], table)}
    return schemas


def _predictions_spec(model: ModelSpec, source: TableSpec, ts_key: str | None) -> TableSpec:
    """The scored table's keys (and its timestamp key), the prediction (and for classifiers
    the probability), which model version scored it, and when."""
    assert model.scoring is not None
    types = {c.name: c.type for c in source.columns}
    keys = [k for k in source.keys if k != ts_key]
    columns = [Column(name=k, type=types[k], nullable=False) for k in keys if k in types]
    if ts_key and ts_key in types:
        columns.append(Column(name=ts_key, type=types[ts_key], comment="features as of"))
    if len(columns) < len(keys) + bool(ts_key):  # a derived feature table: keys from the data
        columns, keys = [], []
    if model.task == "regression":
        columns.append(Column(name="prediction", type="double", nullable=False))
    else:  # a multiclass model's scoring adds probabilities (map of class to probability)
        columns += [
            Column(name="prediction", type="int", nullable=False),
            Column(
                name="probability",
                type="double",
                nullable=False,
                comment="P(class 1); multiclass: P(predicted class)",
            ),
        ]
    columns += [
        Column(name="model_name", type="string", nullable=False),
        Column(name="model_version", type="string", nullable=False),
        Column(name="scored_at", type="timestamp", nullable=False),
        Column(name="run_id", type="string", nullable=False),
    ]
    return TableSpec(
        layer="gold",
        description=f"Batch predictions of {model.registered_name} for {model.scoring.input}",
        columns=columns,
        keys=keys,
    )
