"""Databricks Asset Bundles as Databricks writes them: included bundle fragments, paths
relative to the file that declares them, target overrides, mode and presets, the local
values of ``${workspace.*}`` and the Databricks-only keys accepted and ignored locally.

Everything here works on the raw YAML (plain dicts and lists) before validation, so the
loader can tell which file a key came from and the collector of ignored keys does not
depend on the models.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse.config.bundle_spec import OTHER_RESOURCE_KINDS
from lakehouse.config.declarative import PIPELINE_IGNORED_KEYS
from lakehouse.config.job_settings import JOB_IGNORED_KEYS
from lakehouse.config.local_values import current_user, short_name
from lakehouse.core.errors import ConfigError

if TYPE_CHECKING:
    from lakehouse.config.project import Project

# top-level keys of a bundle fragment (the rest of an included file is a conf file)
FRAGMENT_KEYS = (
    "resources",
    "variables",
    "targets",
    "artifacts",
    "sync",
    "permissions",
    "workspace",
    "presets",
    "run_as",
    "experimental",
)
# sections of the root merged from the selected target (``targets.<t>.<key>``)
TARGET_OVERRIDES = (
    "workspace",
    "permissions",
    "presets",
    "run_as",
    "artifacts",
    "sync",
    "experimental",
)

# ---------------------------------------------------------------- Databricks-only keys

# Key paths that only mean something on Databricks: accepted, listed once by
# ``lakehouse bundle validate`` under "ignored locally". ``*`` is any mapping key, ``[]``
# any list item. Paths are matched on the merged bundle (root + includes + the target).
_JOB = "resources.jobs.*"
_TASK = "resources.jobs.*.tasks[]"
_PIPELINE = "resources.pipelines.*"
DATABRICKS_ONLY_KEYS: tuple[str, ...] = (
    "workspace.*",
    "artifacts",
    "sync",
    "experimental",
    "bundle.databricks_cli_version",
    "bundle.cluster_id",
    "bundle.compute_id",
    "bundle.git",
    "bundle.deployment",
    "bundle.uuid",
    "presets.source_linked_deployment",
    "presets.artifacts_dynamic_version",
    *(f"{_JOB}.{key}" for key in JOB_IGNORED_KEYS),
    *(
        f"{_TASK}.{key}"
        for key in (
            "new_cluster",
            "existing_cluster_id",
            "job_cluster_key",
            "environment_key",
            "libraries",
            "compute_key",
            "email_notifications",
            "notification_settings",
            "health",
            "disable_auto_optimization",
        )
    ),
    f"{_TASK}.notebook_task.warehouse_id",
    f"{_TASK}.notebook_task.source",
    f"{_TASK}.spark_python_task.source",
    *(f"{_PIPELINE}.{key}" for key in (*PIPELINE_IGNORED_KEYS, "storage")),
    "resources.schemas.*.grants",
    "resources.schemas.*.properties",
    f"{_PIPELINE}.libraries[].jar",
    f"{_PIPELINE}.libraries[].maven",
    f"{_PIPELINE}.libraries[].whl",
    # resources.schemas are the implicit catalog's schemas (lakehouse.config.resolve)
    *(f"resources.{kind}.*" for kind in OTHER_RESOURCE_KINDS if kind != "schemas"),
)


def _split(pattern: str) -> list[str]:
    return [p for p in re.split(r"\.|(?=\[\])", pattern) if p]


def _walk(value: Any, parts: list[str], path: str) -> Iterator[str]:
    """The concrete key paths under ``value`` matching ``parts``."""
    if not parts:
        yield path
        return
    head, rest = parts[0], parts[1:]
    if head == "[]":
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield from _walk(item, rest, f"{path}[{i}]")
        return
    if not isinstance(value, dict):
        return
    for key, child in value.items():
        if fnmatch.fnmatchcase(str(key), head) and child is not None:
            yield from _walk(child, rest, f"{path}.{key}" if path else str(key))


def _all_paths(value: Any, path: str) -> Iterator[str]:
    """Every key path under ``value``, in document order."""
    if isinstance(value, dict):
        for key, child in value.items():
            sub = f"{path}.{key}" if path else str(key)
            yield sub
            yield from _all_paths(child, sub)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _all_paths(item, f"{path}[{i}]")


def collect_ignored(raw: Mapping[str, Any]) -> list[str]:
    """The Databricks-only key paths the merged bundle ``raw`` sets, each once, in the
    order they appear in the bundle (``targets`` are not walked: the selected target's
    settings are merged into ``raw`` already)."""
    document = {k: v for k, v in raw.items() if k != "targets"}
    found = {path for p in DATABRICKS_ONLY_KEYS for path in _walk(document, _split(p), "")}
    return [path for path in _all_paths(document, "") if path in found]


def ignored_keys(project: Project) -> list[str]:
    """The Databricks-only keys of the project's bundle (for its target), each listed once."""
    return list(project.ignored)


# ---------------------------------------------------------------- paths


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _local_relative(value: Any) -> bool:
    return (
        isinstance(value, str)
        and bool(value)
        and not value.startswith(("${", "/", "~"))
        and not _URI.match(value)
    )


def _rebased(value: str, base: Path, root: Path, absolute: bool) -> str:
    """``value`` (relative to ``base``) made absolute, or relative to ``root`` when inside it."""
    path = Path(_normalized(base / value))
    if absolute:
        return str(path)
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _normalized(path: Path) -> str:
    """``path`` with ``..`` and ``.`` folded, without touching the file system (globs stay)."""
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if parts and parts[-1] != path.anchor:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return str(Path(*parts)) if parts else str(path)


# (pattern, absolute?) of resource paths relative to the file that declares them: pipeline
# paths become absolute, job task paths relative to the bundle root (absolute outside it).
RELATIVE_PATHS: tuple[tuple[str, bool], ...] = (
    ("pipelines.*.root_path", True),
    ("pipelines.*.libraries[].glob.include", True),
    ("pipelines.*.libraries[].file.path", True),
    ("pipelines.*.libraries[].notebook.path", True),
    ("jobs.*.tasks[].notebook_task.notebook_path", False),
    ("jobs.*.tasks[].spark_python_task.python_file", False),
    ("jobs.*.tasks[].sql_task.file.path", False),
    ("jobs.*.tasks[].for_each_task.task.notebook_task.notebook_path", False),
    ("jobs.*.tasks[].for_each_task.task.spark_python_task.python_file", False),
)


def rebase_resource_paths(resources: Any, base: Path, root: Path) -> Any:
    """A copy of a ``resources`` mapping with its relative paths rebased (see RELATIVE_PATHS)."""
    if not isinstance(resources, dict):
        return resources
    out = copy.deepcopy(resources)
    for pattern, absolute in RELATIVE_PATHS:
        parts = _split(pattern)
        for path in list(_walk(out, parts, "")):
            container, last = _container(out, path)
            if container is not None and _local_relative(container.get(last)):
                container[last] = _rebased(container[last], base, root, absolute)
    return out


def _container(data: Any, path: str) -> tuple[dict[str, Any] | None, str]:
    """The mapping holding the last key of ``path`` (``a.b[0].c``), and that key."""
    tokens = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    node = data
    for token in tokens[:-1]:
        node = node[int(token[1:-1])] if token.startswith("[") else node.get(token)
        if node is None:
            return None, ""
    return (node if isinstance(node, dict) else None), tokens[-1]


def rebase_paths(fragment: dict[str, Any], base: Path, root: Path) -> dict[str, Any]:
    """A fragment with its resources' and its targets' resources' paths rebased."""
    out = dict(fragment)
    if "resources" in out:
        out["resources"] = rebase_resource_paths(out["resources"], base, root)
    targets = out.get("targets")
    if isinstance(targets, dict):
        out["targets"] = {
            name: (
                {**t, "resources": rebase_resource_paths(t["resources"], base, root)}
                if isinstance(t, dict) and "resources" in t
                else t
            )
            for name, t in targets.items()
        }
    artifacts = out.get("artifacts")
    if isinstance(artifacts, dict):
        out["artifacts"] = {
            name: (
                {**a, "path": _rebased(a["path"], base, root, True)}
                if isinstance(a, dict) and _local_relative(a.get("path"))
                else a
            )
            for name, a in artifacts.items()
        }
    return out


# ---------------------------------------------------------------- merging fragments


class Fragments:
    """The root bundle file and the bundle fragments of included files, merged, with the
    file each entry came from (``origin``: key path -> file)."""

    def __init__(self, root_raw: dict[str, Any], display: str) -> None:
        self.raw: dict[str, Any] = dict(root_raw)
        self.display = display
        self.origin: dict[str, str] = {}
        for key, value in root_raw.items():
            self._note(key, value, display)

    def _note(self, key: str, value: Any, file: str) -> None:
        self.origin.setdefault(key, file)
        if key in ("resources", "targets", "variables", "artifacts") and isinstance(value, dict):
            for name, entry in value.items():
                if key == "resources" and isinstance(entry, dict):
                    for res in entry:
                        self.origin.setdefault(f"resources.{name}.{res}", file)
                else:
                    self.origin.setdefault(f"{key}.{name}", file)

    def add(self, fragment: dict[str, Any], file: str) -> None:
        """Merge an included file's bundle fragment; a resource or variable declared twice
        is an error naming both files."""
        for key, value in fragment.items():
            if key == "resources":
                self._add_resources(value, file)
            elif key in ("variables", "artifacts"):
                self._add_unique(key, value, file)
            elif key == "permissions":
                self.raw[key] = [*(self.raw.get(key) or []), *_as_list(value, file, key)]
            else:
                self.raw[key] = deep_merge(self.raw.get(key), value)
            self._note(key, value, file)

    def _add_unique(self, section: str, value: Any, file: str) -> None:
        merged = dict(_as_mapping(self.raw.get(section), self.display, section))
        for name, entry in _as_mapping(value, file, section).items():
            if name in merged:
                raise ConfigError(
                    file,
                    f"{section}.{name}",
                    f"already declared in {self.origin[f'{section}.{name}']}",
                )
            merged[name] = entry
        self.raw[section] = merged

    def _add_resources(self, value: Any, file: str) -> None:
        merged = {
            k: dict(_as_mapping(v, self.display, f"resources.{k}"))
            for k, v in _as_mapping(self.raw.get("resources"), self.display, "resources").items()
        }
        for kind, entries in _as_mapping(value, file, "resources").items():
            into = merged.setdefault(kind, {})
            for name, entry in _as_mapping(entries, file, f"resources.{kind}").items():
                where = f"resources.{kind}.{name}"
                if name in into:
                    raise ConfigError(file, where, f"already declared in {self.origin[where]}")
                into[name] = entry
        self.raw["resources"] = merged

    def file_of(self, key: str) -> str:
        """The file that declared ``key`` (the longest declared prefix), else the root file."""
        best = ""
        for declared in self.origin:
            if (key == declared or key.startswith((declared + ".", declared + "["))) and len(
                declared
            ) > len(best):
                best = declared
        return self.origin.get(best, self.display)


def _as_mapping(value: Any, file: str, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(file, key, f"expected a mapping, got {type(value).__name__}")
    return value


def _as_list(value: Any, file: str, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(file, key, f"expected a list, got {type(value).__name__}")
    return value


# lists merged entry by entry on these keys when a target overrides a resource (as DAB does);
# other lists are appended to
_LIST_KEYS = {
    "tasks": "task_key",
    "job_clusters": "job_cluster_key",
    "environments": "environment_key",
    "parameters": "name",
    "clusters": "label",
}


def deep_merge(base: Any, override: Any, key: str = "") -> Any:
    """``override`` merged over ``base``: mappings key by key, keyed lists entry by entry."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            out[k] = deep_merge(base.get(k), v, str(k)) if k in base else copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(override, list):
        by = _LIST_KEYS.get(key)
        if by is None or not all(isinstance(x, dict) for x in (*base, *override)):
            return [*base, *copy.deepcopy(override)]
        out_list = list(base)
        index = {x.get(by): i for i, x in enumerate(out_list)}
        for item in override:
            if item.get(by) in index:
                out_list[index[item[by]]] = deep_merge(out_list[index[item[by]]], item)
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(override)


def apply_target(raw: dict[str, Any], target: str) -> dict[str, Any]:
    """The bundle as the target ``target`` sees it: its resources merged over the root ones,
    its workspace, permissions, presets, run_as … over the root's (DAB semantics)."""
    spec = (raw.get("targets") or {}).get(target) or {}
    out = dict(raw)
    if spec.get("resources"):
        out["resources"] = deep_merge(raw.get("resources") or {}, spec["resources"])
    for key in TARGET_OVERRIDES:
        if spec.get(key) is not None:
            out[key] = (
                spec[key]
                if key in ("permissions", "run_as")
                else deep_merge(raw.get(key), spec[key])
            )
    bundle = dict(raw.get("bundle") or {})
    for key in ("cluster_id", "compute_id", "git"):
        if spec.get(key) is not None:
            bundle[key] = spec[key]
    if isinstance(spec.get("bundle"), dict):
        bundle = deep_merge(bundle, spec["bundle"])
    if bundle:
        out["bundle"] = bundle
    return out


# ---------------------------------------------------------------- references


def resource_context(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``resources.<kind>.<key>.id`` (the key: a resource's local id) and ``.name``."""
    out: dict[str, Any] = {}
    for kind, entries in (raw.get("resources") or {}).items():
        if not isinstance(entries, dict):
            continue
        for key, spec in entries.items():
            out[f"resources.{kind}.{key}.id"] = key
            name = spec.get("name") if isinstance(spec, dict) else None
            out[f"resources.{kind}.{key}.name"] = name if isinstance(name, str) else key
    return out


# ---------------------------------------------------------------- mode and presets


DEVELOPMENT_CONCURRENT_RUNS = 4  # Databricks' max_concurrent_runs of a job in development mode


def effective_presets(raw: Mapping[str, Any], mode: str | None, dab: bool) -> dict[str, Any]:
    """The presets in force: the bundle's (target merged), with development mode's defaults
    in a databricks.yml bundle, as Databricks applies them: name prefix
    ``[dev <short_name>] ``, a ``dev: <short_name>`` tag, pipelines in development,
    schedules and triggers paused, up to 4 concurrent runs of a job."""
    presets = dict(raw.get("presets") or {})
    if dab and mode == "development":
        user = short_name(current_user())
        presets.setdefault("name_prefix", f"[dev {user}] ")
        presets.setdefault("pipelines_development", True)
        presets.setdefault("trigger_pause_status", "PAUSED")
        presets.setdefault("jobs_max_concurrent_runs", DEVELOPMENT_CONCURRENT_RUNS)
        presets["tags"] = {"dev": user, **(presets.get("tags") or {})}
    return presets


def with_presets(
    raw: dict[str, Any], presets: Mapping[str, Any], job_fields: frozenset[str]
) -> dict[str, Any]:
    """Presets and top-level permissions applied to the resources of the merged bundle:
    a schedule, trigger or continuous without its own ``pause_status`` takes the presets'
    ``trigger_pause_status``; a job without ``max_concurrent_runs`` takes
    ``jobs_max_concurrent_runs``; tags a job does not set are added (when the job model
    has ``tags``: ``job_fields``); names are left as they are (see Project.name_prefix)."""
    resources = copy.deepcopy(raw.get("resources") or {})
    permissions = raw.get("permissions") or []
    for job in (resources.get("jobs") or {}).values():
        if isinstance(job, dict):
            _job_presets(job, presets, permissions, job_fields)
    for pipeline in (resources.get("pipelines") or {}).values():
        if not isinstance(pipeline, dict):
            continue
        if permissions:
            pipeline["permissions"] = [*(pipeline.get("permissions") or []), *permissions]
        if presets.get("pipelines_development") and pipeline.get("development") is None:
            pipeline["development"] = True
    return {**raw, "resources": resources} if resources else raw


def _job_presets(
    job: dict[str, Any],
    presets: Mapping[str, Any],
    permissions: list[Any],
    job_fields: frozenset[str],
) -> None:
    if permissions:
        job["permissions"] = [*(job.get("permissions") or []), *map(_job_level, permissions)]
    if presets.get("jobs_max_concurrent_runs") and "max_concurrent_runs" not in job:
        job["max_concurrent_runs"] = presets["jobs_max_concurrent_runs"]
    status = presets.get("trigger_pause_status")
    if status:
        for key in ("schedule", "trigger", "continuous"):
            part = job.get(key)
            if isinstance(part, dict) and not part.get("pause_status"):
                job[key] = {**part, "pause_status": status}
    tags = presets.get("tags") or {}
    if tags and "tags" in job_fields:
        job["tags"] = {**tags, **(job.get("tags") or {})}


def _job_level(permission: Any) -> Any:
    """A top-level permission as a job permission (``CAN_RUN`` is ``CAN_MANAGE_RUN`` on jobs)."""
    if isinstance(permission, dict) and permission.get("level") == "CAN_RUN":
        return {**permission, "level": "CAN_MANAGE_RUN"}
    return permission
