"""What a pipeline run needs to know, from a bundle's ``resources.pipelines.<key>`` or from an
Apache ``spark-pipelines`` spec file (``spark-pipeline.yml`` / ``pipeline.yml``).

Both end up as a :class:`PipelineDefinition`: the source files in order, the catalog and
schema its datasets live in, its configuration and where its incremental state is kept.
"""

from __future__ import annotations

import glob as globlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lakehouse.config.declarative import PipelineLibrary, PipelineResource
from lakehouse.config.project import Project, resolve_path
from lakehouse.core.errors import ConfigError

SPEC_FILE_NAMES = ("spark-pipeline.yml", "spark-pipeline.yaml", "pipeline.yml", "pipeline.yaml")
SOURCE_SUFFIXES = (".py", ".sql", ".ipynb")
BUNDLE_FILES = ("databricks.yml", "databricks.yaml", "bundle.yml", "bundle.yaml")
_SPEC_KEYS = {"name", "storage", "catalog", "database", "schema", "configuration", "libraries"}


@dataclass(frozen=True)
class PipelineDefinition:
    """One pipeline: its name, source files, target catalog/schema, configuration, state dir."""

    key: str
    name: str
    catalog: str
    schema: str
    files: tuple[Path, ...]
    configuration: Mapping[str, str] = field(default_factory=dict)
    root_path: Path | None = None
    storage: Path | None = None
    origin: str = ""  # the file that declared it (for errors)

    def qualify(self, name: str, namespace: tuple[str, str] | None = None) -> str:
        """``<catalog>.<schema>.<name>`` for an unqualified name, ``<catalog>.<a>.<b>`` for a
        two-part one; a three-part name unchanged (all lower-cased, as the catalog is).
        ``namespace``: the ``(catalog, schema)`` a SQL file's ``USE`` chose."""
        catalog, schema = namespace or (self.catalog, self.schema)
        parts = [p.strip("`") for p in name.split(".")]
        if len(parts) == 1:
            parts = [catalog, schema, *parts]
        elif len(parts) == 2:
            parts = [catalog, *parts]
        return ".".join(parts).lower()


def _library_files(lib: PipelineLibrary, base: Path, origin: str, index: int) -> list[Path]:
    """The source files one ``libraries`` entry names, in a stable order."""
    if lib.glob is not None:
        pattern = lib.glob.include
        if pattern.endswith("/**"):
            pattern += "/*"
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        found = sorted(Path(p) for p in globlib.glob(full, recursive=True))  # noqa: PTH207
        return [
            p
            for p in found
            if p.is_file() and p.suffix in SOURCE_SUFFIXES and "__pycache__" not in p.parts
        ]
    entry = lib.file or lib.notebook
    if entry is None:  # jar / maven / whl: Databricks only
        return []
    path = Path(entry.path) if Path(entry.path).is_absolute() else base / entry.path
    if not path.suffix and lib.notebook is not None:  # Databricks notebook paths drop it
        path = next(
            (path.with_suffix(s) for s in SOURCE_SUFFIXES if path.with_suffix(s).is_file()), path
        )
    if not path.is_file():
        raise ConfigError(origin, f"libraries[{index}]", f"no such file: {path}")
    return [path]


def from_resource(
    project: Project, key: str, resource: PipelineResource, *, origin: str = "bundle"
) -> PipelineDefinition:
    """The definition of a bundle's ``resources.pipelines.<key>``."""
    files: list[Path] = []
    for i, lib in enumerate(resource.libraries):
        files.extend(f for f in _library_files(lib, project.root, origin, i) if f not in files)
    schema = resource.schema_name or "default"
    return PipelineDefinition(
        key=key,
        name=resource.name or key,
        catalog=(resource.catalog or project.catalog.name).lower(),
        schema=schema.lower(),
        files=tuple(files),
        configuration=dict(resource.configuration),
        root_path=Path(resource.root_path) if resource.root_path else None,
        storage=project.data_root / "pipelines" / key,
        origin=origin,
    )


def local_storage(storage: str) -> str:
    """A spec's ``storage`` as a local path when it is one (``file:///x`` -> ``/x``; Apache's
    runner wants the URI form)."""
    if storage.startswith("file://"):
        return storage.removeprefix("file://") or "/"
    if storage.startswith("file:"):
        return storage.removeprefix("file:")
    return storage


def find_spec_file(start: Path) -> Path:
    """The spec file in ``start`` (a file is taken as given) or the nearest parent having one."""
    if start.is_file():
        return start
    for folder in (start, *start.parents):
        for name in SPEC_FILE_NAMES:
            if (folder / name).is_file():
                return folder / name
    raise ConfigError(str(start), "", f"no pipeline spec file ({', '.join(SPEC_FILE_NAMES)})")


def load_spec_file(project: Project, path: Path) -> PipelineDefinition:
    """An Apache ``spark-pipelines`` spec file read into a definition (the same keys and
    checks as ``spark-pipelines``: name required, libraries as ``glob: {include}``)."""
    origin = str(path)
    try:
        data: Any = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(origin, "", f"cannot read the spec: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(origin, "", "expected a mapping")
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        raise ConfigError(
            origin, unknown[0], f"unknown key (known: {', '.join(sorted(_SPEC_KEYS))})"
        )
    if not data.get("name"):
        raise ConfigError(origin, "name", "required")
    libraries = []
    for i, entry in enumerate(data.get("libraries") or []):
        try:
            libraries.append(PipelineLibrary.model_validate(entry))
        except ValueError as exc:
            raise ConfigError(origin, f"libraries[{i}]", str(exc).splitlines()[-1]) from None
    config = data.get("configuration") or {}
    base = path.parent.resolve()
    files: list[Path] = []
    for i, lib in enumerate(libraries):
        files.extend(f for f in _library_files(lib, base, origin, i) if f not in files)
    storage = local_storage(str(data.get("storage") or ""))
    local = storage and "://" not in storage  # state is kept on the local filesystem
    return PipelineDefinition(
        key=str(data["name"]),
        name=str(data["name"]),
        catalog=str(data.get("catalog") or project.catalog.name).lower(),
        schema=str(data.get("database") or data.get("schema") or "default").lower(),
        files=tuple(files),
        configuration={str(k): str(v) for k, v in config.items()},
        root_path=base,
        storage=Path(resolve_path(base, storage)) if local else base / ".storage",
        origin=origin,
    )


def bundle_pipelines(project: Project) -> dict[str, PipelineResource]:
    """The bundle's ``resources.pipelines`` (empty when the bundle model has none)."""
    pipelines = getattr(project.bundle.resources, "pipelines", None)
    return dict(pipelines or {})


def pipeline_definition(project: Project, key: str) -> PipelineDefinition:
    """The definition of the bundle's pipeline ``key`` (by key or by display name)."""
    pipelines = bundle_pipelines(project)
    for k, resource in pipelines.items():
        if key in (k, resource.name):
            return from_resource(project, k, resource)
    known = ", ".join(sorted(pipelines)) or "none"
    origin = next((n for n in BUNDLE_FILES if (project.root / n).is_file()), "bundle.yml")
    raise ConfigError(origin, f"resources.pipelines.{key}", f"no such pipeline (known: {known})")


def implicit_project(spec_path: Path) -> Path:
    """A project folder for a spec file run outside any bundle (as ``spark-pipelines run``
    does): written under the spec's ``storage``, its catalog the spec's (default
    ``spark_catalog``), its tables and state under ``storage``. Returns the folder."""
    try:
        data = yaml.safe_load(spec_path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(spec_path), "", f"cannot read the spec: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(spec_path), "", "expected a mapping")
    base = spec_path.parent.resolve()
    storage = local_storage(str(data.get("storage") or ".storage"))
    local = Path(resolve_path(base, storage)) if "://" not in storage else base / ".storage"
    root = local / "lakehouse-project"
    catalog = str(data.get("catalog") or "spark_catalog").lower()
    schema = str(data.get("database") or data.get("schema") or "default").lower()
    name = "".join(c if c.isalnum() else "_" for c in str(data.get("name") or "pipeline"))
    (root / "conf").mkdir(parents=True, exist_ok=True)
    bundle = {
        "bundle": {"name": name},
        "include": ["conf/*.yml"],
        "variables": {"data_root": {"default": str(local)}},
        "targets": {"local": {"default": True}},
    }
    (root / "bundle.yml").write_text(yaml.safe_dump(bundle, sort_keys=False))
    conf = {
        "catalog": {
            "name": catalog,
            "storage_root": "${var.data_root}/tables",
            "schemas": {schema: {}},
        }
    }
    (root / "conf" / "catalog.yml").write_text(yaml.safe_dump(conf, sort_keys=False))
    return root
