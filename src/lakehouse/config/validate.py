"""Checks of the resolved project: references between sections, and governance.

Every error names the file the offending entry came from (``origin``: ``"section.key"`` ->
file) and its key path.
"""

from __future__ import annotations

from dataclasses import dataclass

from lakehouse.config.catalog import (
    CatalogSpec,
    RowFilter,
    SecurableGrant,
    SecurableRowFilter,
    TableSpec,
)
from lakehouse.config.ml import ModelSpec, task_estimators, task_metrics
from lakehouse.config.predicates import predicate_problem
from lakehouse.config.project import (
    Project,
    TableRef,
    feature_lookup_keys,
    feature_timestamp_key,
)
from lakehouse.config.sources import BRONZE_METADATA_COLUMNS
from lakehouse.core.errors import ConfigError

# ---------------------------------------------------------------- references


@dataclass(frozen=True)
class _References:
    """Looks up what a section entry names; errors point at the entry."""

    project: Project
    origin: dict[str, str]

    def need(self, table: str, section: str, key: str, attr: str) -> TableRef:
        """The catalog table ``table`` named by ``section.key[.attr]``."""
        if table not in self.project.tables:
            known = ", ".join(sorted(self.project.tables)) or "none"
            raise ConfigError(
                self.origin[f"{section}.{key}"],
                f"{section}.{key}" + (f".{attr}" if attr else ""),
                f"unknown table {table!r} (catalog has: {known})",
            )
        return self.project.tables[table]

    def model_columns(self, model_key: str, table: TableRef, attr: str, wanted: list[str]) -> None:
        """Every ``wanted`` column is a column of ``table`` (named by a model's ``attr``)."""
        cols = {c.name for c in table.spec.columns}
        if not _declares_data_columns(table):
            return  # columns come from the data: checked when the table exists
        for col in wanted:
            if col not in cols:
                raise ConfigError(
                    self.origin[f"models.{model_key}"],
                    f"models.{model_key}.{attr}",
                    f"column {col!r} is not a column of {table.name}",
                )

    def model_error(self, model_key: str, attr: str, message: str) -> ConfigError:
        return ConfigError(
            self.origin[f"models.{model_key}"], f"models.{model_key}.{attr}", message
        )


def check_references(project: Project, origin: dict[str, str]) -> None:
    """Every table, column, model and feature a section names exists where it should."""
    refs = _References(project, origin)
    for key, source in project.sources.items():
        refs.need(source.target, "sources", key, "target")
    for key in project.silver:
        _check_silver(refs, key)
    for key in project.gold:
        _check_gold(refs, key)
    for key, model in project.models.items():
        _check_model(refs, key, model)
    for key in project.monitoring.models:
        _check_monitor(project, origin, key)


def _declares_data_columns(table: TableRef) -> bool:
    """Whether the catalog declares the table's data columns (not only Bronze metadata)."""
    metadata = {c.name for c in BRONZE_METADATA_COLUMNS}
    return any(c.name not in metadata for c in table.spec.columns)


def _check_silver(refs: _References, key: str) -> None:
    spec = refs.project.silver[key]
    file = refs.origin[f"silver.{key}"]
    target = refs.need(key, "silver", key, "")
    source_table = refs.need(spec.source, "silver", key, "source")
    target_cols = {c.name for c in target.spec.columns}
    for col in [*spec.keys, *([spec.sequence_by] if spec.sequence_by else [])]:
        if _declares_data_columns(target) and col not in target_cols:
            raise ConfigError(file, f"silver.{key}", f"column {col!r} is not a column of {key}")
    source_cols = {c.name for c in source_table.spec.columns}
    for tgt, src in spec.rename.items():
        if _declares_data_columns(source_table) and src not in source_cols:
            raise ConfigError(
                file, f"silver.{key}.rename.{tgt}", f"{src!r} is not a column of {spec.source}"
            )


def _check_gold(refs: _References, key: str) -> None:
    gold = refs.project.gold[key]
    gold_table = refs.need(key, "gold", key, "")
    for alias, input_table in gold.inputs.items():
        refs.need(input_table, "gold", key, f"inputs.{alias}")
    if gold.timestamp_key is not None and gold.timestamp_key not in gold_table.spec.keys:
        raise ConfigError(
            refs.origin[f"gold.{key}"],
            f"gold.{key}.timestamp_key",
            f"{gold.timestamp_key!r} must be one of the keys of {key} "
            f"(catalog keys: {', '.join(gold_table.spec.keys) or 'none'})",
        )


def _check_model(refs: _References, key: str, model: ModelSpec) -> None:
    labels = model.training_set.labels
    label_table = refs.need(labels.table, "models", key, "training_set.labels.table")
    refs.model_columns(
        key,
        label_table,
        "training_set.labels",
        [
            *labels.keys,
            *([labels.timestamp] if labels.timestamp else []),
            # a bare name is a column (see ml.training_set.label_column), else an expression
            *([labels.label] if labels.label.isidentifier() else []),
        ],
    )
    for n in range(len(model.training_set.features)):
        _check_feature_lookup(refs, key, model, n, label_table)
    _check_task(refs, key, model)
    if model.split.by == "time" and not labels.timestamp:
        raise refs.model_error(
            key,
            "split.by",
            "a time-based split needs training_set.labels.timestamp (or use 'random')",
        )
    if model.scoring is not None:
        scoring_input = refs.need(model.scoring.input, "models", key, "scoring.input")
        refs.model_columns(key, scoring_input, "scoring.input", model.features)
        refs.need(model.scoring.output, "models", key, "scoring.output")


def _check_task(refs: _References, key: str, model: ModelSpec) -> None:
    """Every candidate's estimator and every promotion metric fit the model's task."""
    estimators = task_estimators(model.task)
    for name in model.candidates:
        estimator = model.estimator_of(name)
        if estimator not in estimators:
            attr = f"candidates.{name}" + (".estimator" if model.candidates[name].estimator else "")
            raise refs.model_error(
                key,
                attr,
                f"{estimator} does not fit task: {model.task} "
                f"(estimators for {model.task}: {', '.join(estimators)})",
            )
    metrics = task_metrics(model.task)
    named = [("promotion.metric", model.promotion.metric)] + [
        (f"promotion.thresholds.{m}", m) for m in model.promotion.thresholds
    ]
    for attr, metric in named:
        if metric not in metrics:
            raise refs.model_error(
                key,
                attr,
                f"{metric} is not a metric of task: {model.task} (metrics: {', '.join(metrics)})",
            )


def _check_feature_lookup(
    refs: _References, key: str, model: ModelSpec, n: int, label_table: TableRef
) -> None:
    lookup = model.training_set.features[n]
    attr = f"training_set.features[{n}]"
    table = refs.need(lookup.table, "models", key, f"{attr}.table")
    refs.model_columns(key, table, attr, lookup.features)
    feature_keys = feature_lookup_keys(refs.project, lookup.table)
    lookup_keys = lookup.lookup_keys or feature_keys
    if len(lookup_keys) != len(feature_keys):
        raise refs.model_error(
            key,
            f"{attr}.lookup_keys",
            f"{lookup.table} is keyed by {', '.join(feature_keys) or 'nothing'}; "
            f"give one lookup key per table key",
        )
    refs.model_columns(key, label_table, f"{attr}.lookup_keys", lookup_keys)
    if (
        feature_timestamp_key(refs.project, lookup.table)
        and not model.training_set.labels.timestamp
    ):
        raise refs.model_error(
            key,
            "training_set.labels.timestamp",
            f"{lookup.table} is a time series feature table: the labels need a "
            "timestamp to look features up as of",
        )


def _check_monitor(project: Project, origin: dict[str, str], key: str) -> None:
    monitor = project.monitoring.models[key]
    file = origin[f"monitoring.models.{key}"]
    if key not in project.models:
        known = ", ".join(sorted(project.models)) or "none"
        raise ConfigError(
            file, f"monitoring.models.{key}", f"no such model in conf/ (models: {known})"
        )
    features = project.models[key].features
    for n, feature in enumerate(monitor.drift.features or []):
        if feature not in features:
            raise ConfigError(
                file,
                f"monitoring.models.{key}.drift.features[{n}]",
                f"{feature!r} is not a feature of model {key!r}",
            )
    task = project.models[key].task
    metrics = task_metrics(task)
    perf, ab = monitor.performance, monitor.ab
    named = [
        *(f"performance.metrics[{n}]" for n in range(len(perf.metrics))),
        *(f"performance.thresholds.{m}" for m in perf.thresholds),
        *(f"performance.max_drop.{m}" for m in perf.max_drop),
        "ab.metric",
    ]
    values = [*perf.metrics, *perf.thresholds, *perf.max_drop, ab.metric]
    given = [
        *(["metrics" in perf.model_fields_set] * len(perf.metrics)),
        *([True] * len(perf.thresholds)),
        *(["max_drop" in perf.model_fields_set] * len(perf.max_drop)),
        "metric" in ab.model_fields_set,
    ]
    for attr, metric, explicit in zip(named, values, given, strict=True):
        if explicit and metric not in metrics:
            raise ConfigError(
                file,
                f"monitoring.models.{key}.{attr}",
                f"{metric} is not a metric of model {key!r} (task: {task}; "
                f"metrics: {', '.join(metrics)})",
            )
    for dq_table in monitor.quality.tables:
        if dq_table not in project.tables:
            raise ConfigError(
                file,
                f"monitoring.models.{key}.quality.tables.{dq_table}",
                "unknown table (not in the catalog)",
            )


# ---------------------------------------------------------------- governance


def governance_enabled(catalog: CatalogSpec, external: list[SecurableGrant] | None = None) -> bool:
    """Access control applies once the catalog names any principal, owner or grant."""
    p = catalog.principals
    if p.users or p.service_principals or p.groups or catalog.owner or catalog.grants or external:
        return True
    return any(
        schema.owner or schema.grants or any(t.owner or t.grants for t in schema.tables.values())
        for schema in catalog.schemas.values()
    )


@dataclass(frozen=True)
class _Principals:
    """Refuses principals the catalog does not declare (once governance is enabled)."""

    known: frozenset[str]
    enabled: bool

    def check(self, name: str | None, file: str, key: str) -> None:
        if self.enabled and name is not None and name not in self.known:
            raise ConfigError(
                file,
                key,
                f"unknown principal {name!r}: declare it under catalog.principals "
                "(users, service_principals or groups)",
            )


def check_governance(
    project: Project,
    origin: dict[str, str],
    catalog_file: str,
    external_grants: list[tuple[SecurableGrant, str]],
) -> None:
    """Known principals everywhere, grants on known objects, a mask on every pii column."""
    catalog = project.catalog
    p = catalog.principals
    principals = _Principals(
        frozenset({*p.users, *p.service_principals, *p.groups}),
        governance_enabled(catalog, [g for g, _ in external_grants]),
    )
    for group, members in p.groups.items():
        for n, member in enumerate(members):
            principals.check(member, catalog_file, f"catalog.principals.groups.{group}[{n}]")
    principals.check(catalog.owner, catalog_file, "catalog.owner")
    for n, grant in enumerate(catalog.grants):
        principals.check(grant.principal, catalog_file, f"catalog.grants[{n}].principal")
    for schema_name in catalog.schemas:
        _check_schema(catalog, schema_name, origin, catalog_file, principals)
    _check_external_grants(project, external_grants, principals)
    _check_bundle_principals(project, principals)


def _check_schema(
    catalog: CatalogSpec,
    schema_name: str,
    origin: dict[str, str],
    catalog_file: str,
    principals: _Principals,
) -> None:
    schema = catalog.schemas[schema_name]
    schema_file = origin.get(f"schema.{schema_name}", catalog_file)
    where = f"catalog.schemas.{schema_name}"
    principals.check(schema.owner, schema_file, f"{where}.owner")
    for n, grant in enumerate(schema.grants):
        principals.check(grant.principal, schema_file, f"{where}.grants[{n}].principal")
    for table_name, table in schema.tables.items():
        table_file = origin.get(f"table.{schema_name}.{table_name}", schema_file)
        t_where = f"{where}.tables.{table_name}"
        principals.check(table.owner, table_file, f"{t_where}.owner")
        for n, grant in enumerate(table.grants):
            principals.check(grant.principal, table_file, f"{t_where}.grants[{n}].principal")
        _check_masks(table, table_file, t_where)
        _check_row_filters(table, table_file, t_where, principals.known)


def _check_masks(table: TableSpec, table_file: str, where: str) -> None:
    """A pii column needs a mask; a hash or redact mask needs a string column."""
    for n, column in enumerate(table.columns):
        key = f"{where}.columns[{n}]"
        if "pii" in column.tags and column.mask is None:
            raise ConfigError(
                table_file,
                f"{key}.mask",
                f"column {column.name!r} is tagged pii but has no mask (hash, redact or null)",
            )
        if column.mask in ("hash", "redact") and column.type != "string":
            raise ConfigError(
                table_file,
                f"{key}.mask",
                f"a {column.mask} mask needs a string column ({column.name!r} is "
                f"{column.type}); use 'null'",
            )


def _check_row_filters(
    table: TableSpec, table_file: str, where: str, known: frozenset[str]
) -> None:
    """Each predicate is a deterministic row-level expression over the table's columns and
    each ``to`` names a catalog principal or group (whether or not grants are declared)."""
    columns = [c.name for c in table.columns]
    for n, row_filter in enumerate(table.row_filters):
        _check_row_filter(row_filter, columns, known, table_file, f"{where}.row_filters[{n}]")


def _check_row_filter(
    row_filter: RowFilter, columns: list[str], known: frozenset[str], file: str, key: str
) -> None:
    problem = predicate_problem(row_filter.predicate, columns)
    if problem is not None:
        raise ConfigError(file, f"{key}.predicate", problem)
    for m, name in enumerate(row_filter.to):
        if name not in known:
            raise ConfigError(
                file,
                f"{key}.to[{m}]",
                f"unknown principal {name!r}: declare it under catalog.principals "
                "(users, service_principals or groups)",
            )


def with_external_row_filters(
    catalog: CatalogSpec, external: list[tuple[SecurableRowFilter, str]]
) -> CatalogSpec:
    """The catalog with the row filters declared apart from their tables (e.g. in
    conf/grants.yml, ``row_filters: [{table, predicate, to}]``) checked and added to them."""
    if not external:
        return catalog
    p = catalog.principals
    known = frozenset({*p.users, *p.service_principals, *p.groups})
    schemas = {
        name: schema.model_copy(update={"tables": dict(schema.tables)})
        for name, schema in catalog.schemas.items()
    }
    counts: dict[str, int] = {}
    for declared, file in external:
        n = counts[file] = counts.get(file, -1) + 1
        parts = declared.table.split(".")
        schema = schemas.get(parts[1]) if len(parts) == 3 and parts[0] == catalog.name else None
        table = schema.tables.get(parts[2]) if schema is not None else None
        if schema is None or table is None:
            raise ConfigError(
                file,
                f"row_filters[{n}].table",
                f"unknown table {declared.table!r} (give a catalog.schema.table of the catalog)",
            )
        rule = RowFilter(predicate=declared.predicate, to=declared.to)
        _check_row_filter(rule, [c.name for c in table.columns], known, file, f"row_filters[{n}]")
        schema.tables[parts[2]] = table.model_copy(
            update={"row_filters": [*table.row_filters, rule]}
        )
    return catalog.model_copy(update={"schemas": schemas})


def _check_external_grants(
    project: Project, external_grants: list[tuple[SecurableGrant, str]], principals: _Principals
) -> None:
    catalog = project.catalog
    securables = {catalog.name} | {f"{catalog.name}.{s}" for s in catalog.schemas}
    securables |= set(project.tables)
    for n, (grant, file) in enumerate(external_grants):
        if grant.securable not in securables:
            raise ConfigError(
                file,
                f"grants[{n}].securable",
                f"unknown object {grant.securable!r} (a catalog, catalog.schema or catalog.schema.table)",
            )
        principals.check(grant.principal, file, f"grants[{n}].principal")


def _check_bundle_principals(project: Project, principals: _Principals) -> None:
    """``run_as`` of the bundle, its jobs and tasks, and job permissions."""
    bundle = project.bundle
    file = project.bundle_file
    principals.check(bundle.run_as.principal if bundle.run_as else None, file, "run_as")
    for n, permission in enumerate(bundle.permissions):
        principals.check(permission.principal, file, f"permissions[{n}]")
    for job_name, job in bundle.resources.jobs.items():
        where = f"resources.jobs.{job_name}"
        job_file = project.file_of(where)
        principals.check(job.run_as.principal if job.run_as else None, job_file, f"{where}.run_as")
        for n, task in enumerate(job.tasks):
            task_run_as = task.run_as.principal if task.run_as else None
            principals.check(task_run_as, job_file, f"{where}.tasks[{n}].run_as")
        for n, permission in enumerate(job.permissions):
            principals.check(permission.principal, job_file, f"{where}.permissions[{n}]")
