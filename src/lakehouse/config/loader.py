"""Load ``bundle.yml`` and its included ``conf/*.yml`` into a typed :class:`Project`.

Resolution order for variables (last wins): the ``default`` in ``bundle.yml``, the selected
target's ``variables``, ``LAKEHOUSE_VAR_<name>`` environment variables, ``--var name=value``.
``${var.name}``, ``${bundle.name}`` and ``${bundle.target}`` are interpolated in every string.
Every error names the file, the key path and what was expected.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import TypeAdapter, ValidationError

from lakehouse.config.models import (
    BRONZE_METADATA_COLUMNS,
    BundleSpec,
    CatalogSpec,
    Column,
    ConfFile,
    EngineSpec,
    FileSource,
    GoldSpec,
    HttpSource,
    ModelSpec,
    MonitoringSpec,
    SchemaSpec,
    SecurableGrant,
    SilverSpec,
    TableSpec,
    Target,
    Variable,
)
from lakehouse.core.errors import ConfigError

BUNDLE_FILE = "bundle.yml"
ENV_TARGET = "LAKEHOUSE_TARGET"
ENV_ENGINE = "LAKEHOUSE_ENGINE"
ENV_REMOTE = "LAKEHOUSE_REMOTE"
ENV_PROJECT_DIR = "LAKEHOUSE_PROJECT_DIR"
ENV_VAR_PREFIX = "LAKEHOUSE_VAR_"
ENGINE_KINDS = ("sail", "spark", "connect")
S = TypeVar("S")

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


# ---------------------------------------------------------------- YAML


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def read_yaml(path: Path, display: str) -> dict[str, Any]:
    """Parse one YAML file into a mapping; errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(display, "", f"cannot read file ({exc.strerror})") from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(display, line, f"invalid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(display, "", f"invalid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            display, "", f"expected a mapping at the top level, got {type(data).__name__}"
        )
    return data


# ---------------------------------------------------------------- errors


def key_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic location as ``a.b[2].c``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validate(model: Any, data: Any, display: str, prefix: str = "") -> Any:
    """Validate ``data`` against a model or type; the first error becomes a :class:`ConfigError`."""
    try:
        return TypeAdapter(model).validate_python(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        loc = tuple(first["loc"])
        # A value matching no member of a union yields one error per member, each with the
        # member's name as the last location part: report them as one.
        union = [
            e
            for e in errors
            if len(e["loc"]) == len(loc) and tuple(e["loc"][:-1]) == loc[:-1] and _is_type_error(e)
        ]
        if len(union) > 1 and _is_type_error(first):
            members = ", ".join(str(e["loc"][-1]) for e in union)
            loc = loc[:-1]
            message = f"expected one of {members} (got {first.get('input')!r})"
            remaining = len(errors) - len(union)
        else:
            message = _friendly(first)
            remaining = len(errors) - 1
        path = key_path(loc)
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        more = f" (and {remaining} more error{'s' if remaining > 1 else ''})" if remaining else ""
        raise ConfigError(display, path, message + more) from None


def _is_type_error(error: Mapping[str, Any]) -> bool:
    kind = str(error["type"])
    return kind.endswith(("_type", "_parsing")) or kind == "literal_error"


def _friendly(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = str(error["msg"])
    msg = msg.removeprefix("Value error, ")
    given = error.get("input")
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "literal_error":
        return f"{msg} (got {given!r})"
    return msg


# ---------------------------------------------------------------- interpolation


def interpolate(value: Any, context: Mapping[str, Any], display: str, path: str = "") -> Any:
    """Replace ``${var.x}`` / ``${bundle.name}`` / ``${bundle.target}`` in every string."""
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            out[interpolate(k, context, display, sub)] = interpolate(v, context, display, sub)
        return out
    if isinstance(value, list):
        return [interpolate(v, context, display, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def lookup(ref: str) -> Any:
        if ref not in context:
            if ref.startswith("var."):
                known = ", ".join(sorted(k[4:] for k in context if k.startswith("var."))) or "none"
                raise ConfigError(
                    display,
                    path,
                    f"undefined variable '{ref[4:]}' in '${{{ref}}}' (defined: {known})",
                )
            raise ConfigError(
                display,
                path,
                f"unknown reference '${{{ref}}}' (use ${{var.<name>}}, ${{bundle.name}} or ${{bundle.target}})",
            )
        return context[ref]

    return _REFERENCE.sub(lambda m: str(lookup(m.group(1).strip())), value)


# ---------------------------------------------------------------- the project


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

    @property
    def name(self) -> str:
        return self.bundle.bundle.name

    @property
    def data_root(self) -> Path:
        """Where the project keeps its local state (tables default under it, MLflow, logs)."""
        return Path(self.resolve_path(str(self.variables.get("data_root", "./data"))))

    def resolve_path(self, path: str) -> str:
        """Absolute path for a relative one (relative to the bundle root); URIs unchanged."""
        if _URI.match(path) or path.startswith("file:"):
            return path
        p = Path(path).expanduser()
        return str(p if p.is_absolute() else (self.root / p).resolve())

    def table(self, full_name: str) -> TableRef:
        """Look up a catalog table by ``catalog.schema.table``."""
        try:
            return self.tables[full_name]
        except KeyError:
            known = ", ".join(sorted(self.tables)) or "none"
            raise ConfigError(
                "conf/", full_name, f"no such table in the catalog (known: {known})"
            ) from None

    def tables_in_layer(self, layer: str) -> list[TableRef]:
        return [t for t in self.tables.values() if t.spec.layer == layer]


def import_callable(dotted: str) -> Callable[..., Any]:
    """Import a ``package.module:function`` named in the configuration."""
    module_name, _, attr = dotted.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError("conf/", dotted, f"cannot import module {module_name!r}: {exc}") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError("conf/", dotted, f"module {module_name!r} has no function {attr!r}")
    return fn


def find_bundle_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (or $LAKEHOUSE_PROJECT_DIR) with a bundle.yml."""
    env = os.environ.get(ENV_PROJECT_DIR)
    here = Path(env) if env and start is None else (start or Path.cwd())
    here = here.resolve()
    for candidate in (here, *here.parents):
        if (candidate / BUNDLE_FILE).is_file():
            return candidate
    raise ConfigError(
        BUNDLE_FILE, "", f"not found in {here} or any parent directory (pass --project-dir)"
    )


def parse_var_overrides(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError("--var", item, "expected name=value")
        out[name.strip()] = value
    return out


def load_project(
    root: Path | None = None,
    *,
    target: str | None = None,
    engine: str | None = None,
    var_overrides: Mapping[str, str] | None = None,
) -> Project:
    """Load and validate the bundle at ``root`` for ``target`` (default: the default target)."""
    root = find_bundle_root(root)
    bundle_path = root / BUNDLE_FILE
    display = BUNDLE_FILE
    raw = read_yaml(bundle_path, display)

    raw_vars = raw.get("variables") or {}
    declared: dict[str, Variable] = validate(dict[str, Variable], raw_vars, display, "variables")
    raw_targets = raw.get("targets")
    if not isinstance(raw_targets, dict) or not raw_targets:
        raise ConfigError(display, "targets", "required: a mapping with at least one target")
    target_name = _select_target(raw_targets, target, display)

    values: dict[str, Any] = {name: v.default for name, v in declared.items()}
    target_vars = (raw_targets.get(target_name) or {}).get("variables") or {}
    if not isinstance(target_vars, dict):
        raise ConfigError(display, f"targets.{target_name}.variables", "expected a mapping")
    for name, value in target_vars.items():
        if name not in declared:
            raise ConfigError(
                display,
                f"targets.{target_name}.variables.{name}",
                "variable is not declared under 'variables'",
            )
        values[name] = value
    for env_name, value in os.environ.items():
        if env_name.startswith(ENV_VAR_PREFIX) and env_name[len(ENV_VAR_PREFIX) :] in declared:
            values[env_name[len(ENV_VAR_PREFIX) :]] = value
    for name, value in (var_overrides or {}).items():
        if name not in declared:
            raise ConfigError("--var", name, "variable is not declared in bundle.yml 'variables'")
        values[name] = value
    missing = sorted(name for name, v in values.items() if v is None)
    if missing:
        raise ConfigError(
            display,
            f"variables.{missing[0]}",
            f"no value: set a default, a target override, {ENV_VAR_PREFIX}{missing[0]} or --var",
        )

    bundle_name = (
        (raw.get("bundle") or {}).get("name", "") if isinstance(raw.get("bundle"), dict) else ""
    )
    context: dict[str, Any] = {f"var.{k}": v for k, v in values.items()}
    context["bundle.name"] = bundle_name
    context["bundle.target"] = target_name
    resolved = {
        k: (v if k == "variables" else interpolate(v, context, display, k)) for k, v in raw.items()
    }
    bundle: BundleSpec = validate(BundleSpec, resolved, display)
    tgt = bundle.targets[target_name]
    engine_spec = _engine_for(tgt.engine, engine, display)

    confs = [
        (path, validate(ConfFile, interpolate(read_yaml(path, rel), context, rel), rel))
        for path, rel in _included_files(root, bundle.include, display)
    ]
    return _assemble(root, bundle, target_name, tgt, engine_spec, values, confs)


def _select_target(raw_targets: dict[str, Any], requested: str | None, display: str) -> str:
    name = requested or os.environ.get(ENV_TARGET)
    if name:
        if name not in raw_targets:
            raise ConfigError(
                display, f"targets.{name}", f"no such target (defined: {', '.join(raw_targets)})"
            )
        return name
    defaults = [n for n, t in raw_targets.items() if isinstance(t, dict) and t.get("default")]
    return defaults[0] if defaults else next(iter(raw_targets))


def _engine_for(spec: EngineSpec, override: str | None, display: str) -> EngineSpec:
    kind = override or os.environ.get(ENV_ENGINE)
    remote = os.environ.get(ENV_REMOTE)
    if not kind or kind == spec.kind:
        return (
            spec.model_copy(update={"remote": remote})
            if remote and spec.kind == "connect"
            else spec
        )
    if kind not in ENGINE_KINDS:
        source = "--engine" if override else ENV_ENGINE
        raise ConfigError(
            source, kind, f"unknown engine (expected one of: {', '.join(ENGINE_KINDS)})"
        )
    if kind == "connect" and not (remote or spec.remote):
        raise ConfigError(
            ENV_REMOTE,
            "",
            "engine 'connect' needs a Spark Connect URL: set LAKEHOUSE_REMOTE=sc://host:port",
        )
    return EngineSpec(
        kind=kind,
        master=spec.master,
        remote=remote or spec.remote,
        conf=spec.conf,
        delta=spec.delta,
    )


def _included_files(root: Path, patterns: list[str], display: str) -> list[tuple[Path, str]]:
    files: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for i, pattern in enumerate(patterns):
        matches = sorted(root.glob(pattern))
        if not matches:
            raise ConfigError(display, f"include[{i}]", f"pattern {pattern!r} matches no file")
        for path in matches:
            if path.is_file() and path not in seen:
                seen.add(path)
                files.append((path, str(path.relative_to(root))))
    return files


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


def _assemble(
    root: Path,
    bundle: BundleSpec,
    target_name: str,
    target: Target,
    engine: EngineSpec,
    values: dict[str, Any],
    confs: list[tuple[Path, ConfFile]],
) -> Project:
    catalog: CatalogSpec | None = None
    catalog_file = ""
    schemas: dict[str, SchemaSpec] = {}
    sources: dict[str, FileSource | HttpSource] = {}
    silver: dict[str, SilverSpec] = {}
    gold: dict[str, GoldSpec] = {}
    models: dict[str, ModelSpec] = {}
    origin: dict[str, str] = {}  # "section.key" -> file, for error messages
    external_grants: list[tuple[SecurableGrant, str]] = []
    monitoring = MonitoringSpec()

    for path, conf in confs:
        rel = str(path.relative_to(root))
        if conf.catalog is not None:
            if catalog is None:
                catalog, catalog_file = conf.catalog, rel
            elif (
                conf.catalog.name != catalog.name
                or conf.catalog.storage_root != catalog.storage_root
            ):
                raise ConfigError(
                    rel, "catalog.name", f"differs from the catalog declared in {catalog_file}"
                )
            else:
                catalog = _merge_catalog_governance(catalog, conf.catalog, rel, catalog_file)
            for schema_name, schema in conf.catalog.schemas.items():
                origin.setdefault(f"schema.{schema_name}", rel)
                if schema_name in schemas:
                    merged = dict(schemas[schema_name].tables)
                    for table_name, table in schema.tables.items():
                        if table_name in merged:
                            raise ConfigError(
                                rel,
                                f"catalog.schemas.{schema_name}.tables.{table_name}",
                                f"already declared in {origin[f'table.{schema_name}.{table_name}']}",
                            )
                        merged[table_name] = table
                    earlier = schemas[schema_name]
                    if schema.owner and earlier.owner and schema.owner != earlier.owner:
                        raise ConfigError(
                            rel,
                            f"catalog.schemas.{schema_name}.owner",
                            f"differs from the owner declared in {origin[f'schema.{schema_name}']}",
                        )
                    schemas[schema_name] = earlier.model_copy(
                        update={
                            "tables": merged,
                            "owner": earlier.owner or schema.owner,
                            "grants": [*earlier.grants, *schema.grants],
                            "tags": {**earlier.tags, **schema.tags},
                        }
                    )
                else:
                    schemas[schema_name] = schema
                for table_name in schema.tables:
                    origin.setdefault(f"table.{schema_name}.{table_name}", rel)
        _merge_section("sources", sources, conf.sources, rel, origin)
        _merge_section("silver", silver, conf.silver, rel, origin)
        _merge_section("gold", gold, conf.gold, rel, origin)
        _merge_section("models", models, conf.models, rel, origin)
        if conf.monitoring is not None:
            monitoring = _merge_monitoring(monitoring, conf.monitoring, rel, origin)
        external_grants.extend((g, rel) for g in conf.grants)

    if catalog is None:
        raise ConfigError(BUNDLE_FILE, "include", "no included file declares 'catalog:'")
    schemas = _with_generated_tables(schemas, silver, catalog.name)
    schemas = _with_prediction_tables(schemas, gold, models, catalog.name)
    catalog = catalog.model_copy(update={"schemas": schemas})
    project = Project(
        root=root,
        bundle=bundle,
        target_name=target_name,
        target=target,
        engine=engine,
        variables=values,
        catalog=catalog,
        tables={},
        sources=sources,
        silver=silver,
        gold=gold,
        models=models,
        grants=[g for g, _ in external_grants],
        monitoring=monitoring,
    )
    storage_root = project.resolve_path(catalog.storage_root)
    tables: dict[str, TableRef] = {}
    for schema_name, schema in schemas.items():
        for table_name, spec in schema.tables.items():
            location = (
                project.resolve_path(spec.location)
                if spec.location
                else f"{storage_root.rstrip('/')}/{schema_name}/{table_name}"
            )
            ref = TableRef(catalog.name, schema_name, table_name, spec, location)
            tables[ref.full_name] = ref
    object.__setattr__(project, "tables", tables)
    _check_references(project, origin)
    _check_governance(project, origin, catalog_file, external_grants)
    return project


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


def governance_enabled(catalog: CatalogSpec, external: list[SecurableGrant] | None = None) -> bool:
    """Access control applies once the catalog names any principal, owner or grant."""
    p = catalog.principals
    if p.users or p.service_principals or p.groups or catalog.owner or catalog.grants or external:
        return True
    return any(
        schema.owner or schema.grants or any(t.owner or t.grants for t in schema.tables.values())
        for schema in catalog.schemas.values()
    )


def _check_governance(
    project: Project,
    origin: dict[str, str],
    catalog_file: str,
    external_grants: list[tuple[SecurableGrant, str]],
) -> None:
    """Known principals everywhere, grants on known objects, a mask on every pii column."""
    catalog = project.catalog
    p = catalog.principals
    known = {*p.users, *p.service_principals, *p.groups}
    enabled = governance_enabled(catalog, [g for g, _ in external_grants])

    def principal(name: str | None, file: str, key: str) -> None:
        if enabled and name is not None and name not in known:
            raise ConfigError(
                file,
                key,
                f"unknown principal {name!r}: declare it under catalog.principals "
                "(users, service_principals or groups)",
            )

    for group, members in p.groups.items():
        for n, member in enumerate(members):
            principal(member, catalog_file, f"catalog.principals.groups.{group}[{n}]")
    principal(catalog.owner, catalog_file, "catalog.owner")
    for n, grant in enumerate(catalog.grants):
        principal(grant.principal, catalog_file, f"catalog.grants[{n}].principal")
    for schema_name, schema in catalog.schemas.items():
        schema_file = origin.get(f"schema.{schema_name}", catalog_file)
        where = f"catalog.schemas.{schema_name}"
        principal(schema.owner, schema_file, f"{where}.owner")
        for n, grant in enumerate(schema.grants):
            principal(grant.principal, schema_file, f"{where}.grants[{n}].principal")
        for table_name, table in schema.tables.items():
            table_file = origin.get(f"table.{schema_name}.{table_name}", schema_file)
            t_where = f"{where}.tables.{table_name}"
            principal(table.owner, table_file, f"{t_where}.owner")
            for n, grant in enumerate(table.grants):
                principal(grant.principal, table_file, f"{t_where}.grants[{n}].principal")
            for n, column in enumerate(table.columns):
                key = f"{t_where}.columns[{n}]"
                if "pii" in column.tags and column.mask is None:
                    raise ConfigError(
                        table_file,
                        f"{key}.mask",
                        f"column {column.name!r} is tagged pii but has no mask "
                        "(hash, redact or null)",
                    )
                if column.mask in ("hash", "redact") and column.type != "string":
                    raise ConfigError(
                        table_file,
                        f"{key}.mask",
                        f"a {column.mask} mask needs a string column ({column.name!r} is "
                        f"{column.type}); use 'null'",
                    )
    securables = {catalog.name} | {f"{catalog.name}.{s}" for s in catalog.schemas}
    securables |= set(project.tables)
    for n, (grant, file) in enumerate(external_grants):
        if grant.securable not in securables:
            raise ConfigError(
                file,
                f"grants[{n}].securable",
                f"unknown object {grant.securable!r} (a catalog, catalog.schema or catalog.schema.table)",
            )
        principal(grant.principal, file, f"grants[{n}].principal")
    bundle = project.bundle
    principal(bundle.run_as.principal if bundle.run_as else None, BUNDLE_FILE, "run_as")
    for job_name, job in bundle.resources.jobs.items():
        run_as = job.run_as.principal if job.run_as else None
        principal(run_as, BUNDLE_FILE, f"resources.jobs.{job_name}.run_as")
        for n, task in enumerate(job.tasks):
            task_run_as = task.run_as.principal if task.run_as else None
            principal(task_run_as, BUNDLE_FILE, f"resources.jobs.{job_name}.tasks[{n}].run_as")
        for n, permission in enumerate(job.permissions):
            principal(
                permission.principal, BUNDLE_FILE, f"resources.jobs.{job_name}.permissions[{n}]"
            )


PROCESSED_FILES_TABLE = "processed_files"
SYSTEM_SCHEMA = "meta"  # "system" is a reserved catalog name on Sail
QUARANTINE_SUFFIX = "_quarantine"

_PROCESSED_FILES = TableSpec(
    layer="system",
    description="Files ingested into Bronze, keyed by path + size + modification time",
    columns=[
        Column(name="source", type="string", nullable=False),
        Column(name="path", type="string", nullable=False),
        Column(name="size", type="bigint", nullable=False),
        Column(name="modified_at", type="timestamp", nullable=False),
        Column(name="rows", type="bigint", nullable=False),
        Column(name="corrupt_rows", type="bigint", nullable=False),
        Column(name="run_id", type="string", nullable=False),
        Column(name="ingested_at", type="timestamp", nullable=False),
    ],
    keys=["source", "path", "size", "modified_at"],
)

HTTP_RESPONSES_TABLE = "http_responses"

_HTTP_RESPONSES = TableSpec(
    layer="system",
    description="Every API response Bronze ingested, kept raw (payload text)",
    columns=[
        Column(name="source", type="string", nullable=False),
        Column(name="batch_id", type="string", nullable=False),
        Column(name="request", type="string", nullable=False, comment="URL, secrets redacted"),
        Column(name="http_status", type="int", nullable=False),
        Column(name="fetched_at", type="timestamp", nullable=False),
        Column(name="payload", type="string", nullable=False),
        Column(name="records", type="bigint"),
        Column(name="error", type="string"),
        Column(name="run_id", type="string", nullable=False),
    ],
    keys=["source", "batch_id"],
)

DQ_RESULTS_TABLE = "dq_results"
SILVER_RUNS_TABLE = "silver_runs"
SILVER_BATCHES_TABLE = "silver_batches"
ACCESS_AUDIT_TABLE = "access_audit"
LINEAGE_TABLE = "lineage"
JOB_RUNS_TABLE = "job_runs"
MODEL_MONITORING_TABLE = "model_monitoring"

_MODEL_MONITORING = TableSpec(
    layer="system",
    description="Model monitoring results, long format: one row per metric per monitoring run",
    columns=[
        Column(name="monitored_at", type="timestamp", nullable=False),
        Column(name="monitor_run_id", type="string", nullable=False),
        Column(name="model_name", type="string", nullable=False),
        Column(name="model_version", type="string"),
        Column(name="kind", type="string", nullable=False, comment="drift|quality|performance|ab"),
        Column(
            name="subject", type="string", nullable=False, comment="feature, rule, run, version"
        ),
        Column(name="metric", type="string", nullable=False),
        Column(name="value", type="double"),
        Column(name="threshold", type="double"),
        Column(name="alert", type="boolean", nullable=False),
        Column(name="window_start", type="timestamp"),
        Column(name="window_end", type="timestamp"),
        Column(name="reference_rows", type="bigint"),
        Column(name="current_rows", type="bigint"),
        Column(name="details", type="string", comment="JSON"),
    ],
)

_JOB_RUNS = TableSpec(
    layer="system",
    description="One row per task attempt of every bundle job run (and per skipped task)",
    columns=[
        Column(name="job", type="string", nullable=False),
        Column(name="run_id", type="string", nullable=False),
        Column(name="task", type="string", nullable=False),
        Column(name="attempt", type="int", nullable=False, comment="0 for a skipped task"),
        Column(
            name="status",
            type="string",
            nullable=False,
            comment="SUCCESS | FAILED | TIMED_OUT | SKIPPED",
        ),
        Column(name="start_time", type="timestamp"),
        Column(name="end_time", type="timestamp"),
        Column(name="error", type="string"),
        Column(name="principal", type="string"),
        Column(name="target", type="string"),
        Column(name="engine", type="string"),
    ],
)

_ACCESS_AUDIT = TableSpec(
    layer="system",
    description="Every access decision of the project's table access path, allowed or denied",
    columns=[
        Column(name="event_time", type="timestamp", nullable=False),
        Column(name="principal", type="string", nullable=False),
        Column(name="privilege", type="string", nullable=False),
        Column(name="securable", type="string", nullable=False),
        Column(name="allowed", type="boolean", nullable=False),
        Column(name="reason", type="string"),
        Column(name="job", type="string"),
        Column(name="task", type="string"),
        Column(name="run_id", type="string"),
    ],
)
_LINEAGE = TableSpec(
    layer="system",
    description="One row per input -> output edge of every write (table versions, columns)",
    columns=[
        Column(name="event_time", type="timestamp", nullable=False),
        Column(name="run_id", type="string", nullable=False),
        Column(name="job", type="string"),
        Column(name="task", type="string"),
        Column(name="principal", type="string"),
        Column(name="operation", type="string", nullable=False),
        Column(name="output_table", type="string", nullable=False),
        Column(name="output_version", type="bigint", nullable=False),
        Column(name="input_kind", type="string", comment="table | files | http | none"),
        Column(name="input_name", type="string", comment="table name, landing path or URL"),
        Column(name="input_version", type="bigint", comment="Delta version read (tables)"),
        Column(name="column_lineage", type="string", comment="JSON: output column -> inputs"),
    ],
)

_DQ_RESULTS = TableSpec(
    layer="system",
    description="Data-quality results: one row per rule per Silver run",
    columns=[
        Column(name="run_id", type="string", nullable=False),
        Column(name="table", type="string", nullable=False),
        Column(name="rule", type="string", nullable=False),
        Column(name="expectation", type="string", nullable=False),
        Column(name="action", type="string", nullable=False),
        Column(name="evaluated", type="bigint", nullable=False),
        Column(name="failed", type="bigint", nullable=False),
        Column(name="pass_rate", type="double", nullable=False),
        Column(
            name="outcome", type="string", nullable=False, comment="passed|warned|dropped|failed"
        ),
        Column(name="evaluated_at", type="timestamp", nullable=False),
    ],
    keys=["run_id", "table", "rule"],
)

_SILVER_RUNS = TableSpec(
    layer="system",
    description="Row accounting of every Silver run: read = kept + quarantined",
    columns=[
        Column(name="run_id", type="string", nullable=False),
        Column(name="table", type="string", nullable=False),
        Column(name="rows_read", type="bigint", nullable=False),
        Column(name="rows_kept", type="bigint", nullable=False),
        Column(name="rows_quarantined", type="bigint", nullable=False),
        Column(name="rows_deleted", type="bigint", nullable=False),
        Column(name="duplicates_collapsed", type="bigint", nullable=False),
        Column(name="rows_written", type="bigint", nullable=False),
        Column(name="version", type="bigint", nullable=False),
        Column(name="status", type="string", nullable=False),
        Column(name="finished_at", type="timestamp", nullable=False),
    ],
    keys=["run_id", "table"],
)

_SILVER_BATCHES = TableSpec(
    layer="system",
    description="Which Bronze batches each Silver table has refined: its incremental progress",
    columns=[
        Column(name="table", type="string", nullable=False),
        Column(name="source", type="string", nullable=False, comment="the Bronze table"),
        Column(name="batch_id", type="string", nullable=False, comment="Bronze _batch_id"),
        Column(name="rows", type="bigint", nullable=False, comment="Bronze rows of the batch"),
        Column(name="run_id", type="string", nullable=False),
        Column(name="refined_at", type="timestamp", nullable=False),
    ],
    keys=["table", "batch_id"],
)

_QUARANTINE_COLUMNS = [
    Column(name="_row", type="string", nullable=False, comment="the rejected row as JSON"),
    Column(name="_reasons", type="array<string>", nullable=False, comment="violated rules"),
    Column(name="_row_hash", type="string", nullable=False, comment="identity of the rejected row"),
    Column(name="_source_file", type="string"),
    Column(name="_run_id", type="string", nullable=False),
    Column(name="_quarantined_at", type="timestamp", nullable=False),
]


def quarantine_table_name(silver_table: str) -> str:
    """``cat.silver.orders`` -> ``cat.silver.orders_quarantine``."""
    return silver_table + QUARANTINE_SUFFIX


def processed_files_table_name(catalog: str) -> str:
    return f"{catalog}.{SYSTEM_SCHEMA}.{PROCESSED_FILES_TABLE}"


def http_responses_table_name(catalog: str) -> str:
    return f"{catalog}.{SYSTEM_SCHEMA}.{HTTP_RESPONSES_TABLE}"


def _with_generated_tables(
    schemas: dict[str, SchemaSpec], silver: dict[str, SilverSpec], catalog: str
) -> dict[str, SchemaSpec]:
    """Add Bronze metadata columns, a quarantine table per Silver table, the system tables."""
    out: dict[str, SchemaSpec] = {}
    for schema_name, schema in schemas.items():
        tables = {}
        for table_name, spec in schema.tables.items():
            if spec.layer == "bronze":
                declared = {c.name for c in spec.columns}
                extra = [c for c in BRONZE_METADATA_COLUMNS if c.name not in declared]
                spec = spec.model_copy(update={"columns": [*spec.columns, *extra]})
            tables[table_name] = spec
        out[schema_name] = schema.model_copy(update={"tables": tables})
    for full_name, silver_spec in silver.items():
        cat, schema_name, table_name = full_name.split(".")
        if cat != catalog or schema_name not in out or table_name not in out[schema_name].tables:
            continue  # reported by _check_references
        if silver_spec.mode == "scd2":
            out[schema_name] = _with_scd2_columns(out[schema_name], table_name, silver_spec)
        q_name = table_name + QUARANTINE_SUFFIX
        if q_name not in out[schema_name].tables:
            spec = TableSpec(
                layer="silver",
                description=f"Rows rejected on their way into {full_name}, with the reasons",
                columns=_QUARANTINE_COLUMNS,
                keys=["_row_hash"],
            )
            tables = {**out[schema_name].tables, q_name: spec}
            out[schema_name] = out[schema_name].model_copy(update={"tables": tables})
    system = out.get(SYSTEM_SCHEMA, SchemaSpec(description="lakehouse bookkeeping"))
    if PROCESSED_FILES_TABLE not in system.tables:
        system = system.model_copy(
            update={"tables": {**system.tables, PROCESSED_FILES_TABLE: _PROCESSED_FILES}}
        )
    for name, spec in (
        (DQ_RESULTS_TABLE, _DQ_RESULTS),
        (SILVER_RUNS_TABLE, _SILVER_RUNS),
        (SILVER_BATCHES_TABLE, _SILVER_BATCHES),
        (ACCESS_AUDIT_TABLE, _ACCESS_AUDIT),
        (LINEAGE_TABLE, _LINEAGE),
        (JOB_RUNS_TABLE, _JOB_RUNS),
        (MODEL_MONITORING_TABLE, _MODEL_MONITORING),
    ):
        if name not in system.tables:
            system = system.model_copy(update={"tables": {**system.tables, name: spec}})
    if HTTP_RESPONSES_TABLE not in system.tables:
        system = system.model_copy(
            update={"tables": {**system.tables, HTTP_RESPONSES_TABLE: _HTTP_RESPONSES}}
        )
    out[SYSTEM_SCHEMA] = system
    return out


def _with_prediction_tables(
    schemas: dict[str, SchemaSpec],
    gold: dict[str, GoldSpec],
    models: dict[str, ModelSpec],
    catalog: str,
) -> dict[str, SchemaSpec]:
    """A Gold predictions table per scored model, unless the catalog declares it.

    Columns: the scored table's keys (and its timestamp key), the prediction, the positive
    class probability, which model version scored it, and when.
    """
    for model in models.values():
        if model.scoring is None:
            continue
        parts = model.scoring.output.split(".")
        in_parts = model.scoring.input.split(".")
        if parts[0] != catalog or in_parts[0] != catalog:
            continue  # reported by _check_references
        source = schemas.get(in_parts[1], SchemaSpec()).tables.get(in_parts[2])
        schema = schemas.get(parts[1])
        if source is None or schema is None or parts[2] in schema.tables:
            continue
        ts_key = gold[model.scoring.input].timestamp_key if model.scoring.input in gold else None
        types = {c.name: c.type for c in source.columns}
        keys = [k for k in source.keys if k != ts_key]
        columns = [Column(name=k, type=types[k], nullable=False) for k in keys]
        if ts_key:
            columns.append(Column(name=ts_key, type=types[ts_key], comment="features as of"))
        columns += [
            Column(name="prediction", type="int", nullable=False),
            Column(name="probability", type="double", nullable=False, comment="P(class 1)"),
            Column(name="model_name", type="string", nullable=False),
            Column(name="model_version", type="string", nullable=False),
            Column(name="scored_at", type="timestamp", nullable=False),
            Column(name="run_id", type="string", nullable=False),
        ]
        table = TableSpec(
            layer="gold",
            description=f"Batch predictions of {model.registered_name} for {model.scoring.input}",
            columns=columns,
            keys=keys,
        )
        schemas = {
            **schemas,
            parts[1]: schema.model_copy(update={"tables": {**schema.tables, parts[2]: table}}),
        }
    return schemas


def _with_scd2_columns(schema: SchemaSpec, table_name: str, spec: SilverSpec) -> SchemaSpec:
    """An SCD2 table gets valid_from / valid_to (the sequence column's type) and is_current."""
    table = schema.tables[table_name]
    types = {c.name: c.type for c in table.columns}
    seq_type = types.get(spec.sequence_by or "", "timestamp")
    wanted = [
        # No column comments here: Sail fails SCD2 MERGE plans over columns with metadata.
        Column(name="valid_from", type=seq_type, nullable=False),
        Column(name="valid_to", type=seq_type),
        Column(name="is_current", type="boolean", nullable=False),
    ]
    extra = [c for c in wanted if c.name not in types]
    keys = list(table.keys) if "valid_from" in table.keys else [*table.keys, "valid_from"]
    table = table.model_copy(update={"columns": [*table.columns, *extra], "keys": keys})
    return schema.model_copy(update={"tables": {**schema.tables, table_name: table}})


def dq_results_table_name(catalog: str) -> str:
    return f"{catalog}.{SYSTEM_SCHEMA}.{DQ_RESULTS_TABLE}"


def access_audit_table_name(catalog: str) -> str:
    return f"{catalog}.{SYSTEM_SCHEMA}.{ACCESS_AUDIT_TABLE}"


def model_monitoring_table_name(catalog: str) -> str:
    return f"{catalog}.{SYSTEM_SCHEMA}.{MODEL_MONITORING_TABLE}"


def job_runs_table_name(catalog: str) -> str:
    return f"{catalog}.{SYSTEM_SCHEMA}.{JOB_RUNS_TABLE}"


def lineage_table_name(catalog: str) -> str:
    return f"{catalog}.{SYSTEM_SCHEMA}.{LINEAGE_TABLE}"


def silver_runs_table_name(catalog: str) -> str:
    return f"{catalog}.{SYSTEM_SCHEMA}.{SILVER_RUNS_TABLE}"


def silver_batches_table_name(catalog: str) -> str:
    return f"{catalog}.{SYSTEM_SCHEMA}.{SILVER_BATCHES_TABLE}"


def _check_references(project: Project, origin: dict[str, str]) -> None:
    def need(table: str, section: str, key: str, attr: str) -> TableRef:
        if table not in project.tables:
            known = ", ".join(sorted(project.tables)) or "none"
            raise ConfigError(
                origin[f"{section}.{key}"],
                f"{section}.{key}" + (f".{attr}" if attr else ""),
                f"unknown table {table!r} (catalog has: {known})",
            )
        return project.tables[table]

    for key, source in project.sources.items():
        need(source.target, "sources", key, "target")
    for key, spec in project.silver.items():
        need(key, "silver", key, "")
        source_table = need(spec.source, "silver", key, "source")
        target_cols = {c.name for c in project.tables[key].spec.columns}
        for col in [*spec.keys, *([spec.sequence_by] if spec.sequence_by else [])]:
            if col not in target_cols:
                raise ConfigError(
                    origin[f"silver.{key}"],
                    f"silver.{key}",
                    f"column {col!r} is not a column of {key}",
                )
        source_cols = {c.name for c in source_table.spec.columns}
        for tgt, src in spec.rename.items():
            if src not in source_cols:
                raise ConfigError(
                    origin[f"silver.{key}"],
                    f"silver.{key}.rename.{tgt}",
                    f"{src!r} is not a column of {spec.source}",
                )
    for key, gold in project.gold.items():
        gold_table = need(key, "gold", key, "")
        for alias, input_table in gold.inputs.items():
            need(input_table, "gold", key, f"inputs.{alias}")
        if gold.timestamp_key is not None and gold.timestamp_key not in gold_table.spec.keys:
            raise ConfigError(
                origin[f"gold.{key}"],
                f"gold.{key}.timestamp_key",
                f"{gold.timestamp_key!r} must be one of the keys of {key} "
                f"(catalog keys: {', '.join(gold_table.spec.keys) or 'none'})",
            )
    for key, model in project.models.items():

        def columns_of(table: TableRef, attr: str, wanted: list[str], model_key: str = key) -> None:
            cols = {c.name for c in table.spec.columns}
            for col in wanted:
                if col not in cols:
                    raise ConfigError(
                        origin[f"models.{model_key}"],
                        f"models.{model_key}.{attr}",
                        f"column {col!r} is not a column of {table.name}",
                    )

        labels = model.training_set.labels
        label_table = need(labels.table, "models", key, "training_set.labels.table")
        columns_of(
            label_table,
            "training_set.labels",
            [
                *labels.keys,
                *([labels.timestamp] if labels.timestamp else []),
                # a bare name is a column (see ml.training_set.label_column), else an expression
                *([labels.label] if labels.label.isidentifier() else []),
            ],
        )
        for n, lookup in enumerate(model.training_set.features):
            attr = f"training_set.features[{n}]"
            table = need(lookup.table, "models", key, f"{attr}.table")
            columns_of(table, attr, lookup.features)
            feature_keys = feature_lookup_keys(project, lookup.table)
            lookup_keys = lookup.lookup_keys or feature_keys
            if len(lookup_keys) != len(feature_keys):
                raise ConfigError(
                    origin[f"models.{key}"],
                    f"models.{key}.{attr}.lookup_keys",
                    f"{lookup.table} is keyed by {', '.join(feature_keys) or 'nothing'}; "
                    f"give one lookup key per table key",
                )
            columns_of(label_table, f"{attr}.lookup_keys", lookup_keys)
            if feature_timestamp_key(project, lookup.table) and not labels.timestamp:
                raise ConfigError(
                    origin[f"models.{key}"],
                    f"models.{key}.training_set.labels.timestamp",
                    f"{lookup.table} is a time series feature table: the labels need a "
                    "timestamp to look features up as of",
                )
        if model.split.by == "time" and not labels.timestamp:
            raise ConfigError(
                origin[f"models.{key}"],
                f"models.{key}.split.by",
                "a time-based split needs training_set.labels.timestamp (or use 'random')",
            )
        if model.scoring is not None:
            scoring_input = need(model.scoring.input, "models", key, "scoring.input")
            columns_of(scoring_input, "scoring.input", model.features)
            need(model.scoring.output, "models", key, "scoring.output")
    for key, monitor in project.monitoring.models.items():
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
        for dq_table in monitor.quality.tables:
            if dq_table not in project.tables:
                raise ConfigError(
                    file,
                    f"monitoring.models.{key}.quality.tables.{dq_table}",
                    "unknown table (not in the catalog)",
                )


def feature_timestamp_key(project: Project, table: str) -> str | None:
    """The timestamp key of a Gold feature table (None for a table without one)."""
    gold = project.gold.get(table)
    return gold.timestamp_key if gold is not None else None


def feature_lookup_keys(project: Project, table: str) -> list[str]:
    """The keys a feature table is looked up by: its catalog keys minus the timestamp key."""
    ts = feature_timestamp_key(project, table)
    return [k for k in project.table(table).spec.keys if k != ts]
