"""A bundle's Databricks configuration as written: the root file (``databricks.yml`` …)
with its ``include`` files merged in, paths rebased to where the export is written.

This is what keeps a Databricks Asset Bundle whole through ``lakehouse bundle export
databricks``: every key survives, also those that mean nothing locally (``job_clusters``,
``environments``, ``tags``, ``trigger``, ``resources.pipelines`` …), and ``${...}``
references stay as written for Databricks to resolve. Only what Databricks would reject is
taken out (and listed): the lakehouse's own keys (a target's ``engine``,
``allowed_external_paths``, ``max_parallel_tasks``, webhook ``url`` entries, a task's
``run_as``) and the lakehouse ``conf/`` parts (``catalog``, ``sources`` …) of included files.

Paths are relative to the file that declares them, as on Databricks; in the one exported
file they are relative to its folder. Only local relative paths are rebased: workspace
paths (``/Workspace/…``), URIs, ``${…}`` expressions and paths inside a ``git_source``
(or ``source: GIT``) are kept as written.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lakehouse.config.base import BUNDLE_FILES
from lakehouse.config.dab import FRAGMENT_KEYS
from lakehouse.config.loader import read_yaml
from lakehouse.core.cron import CronError, parse
from lakehouse.core.errors import ConfigError, LakehouseError

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")

Rebase = Callable[[Any], Any]


class DabExportError(LakehouseError):
    """The bundle cannot be written as a Databricks bundle (says what and why)."""


def root_file(root: Path) -> Path:
    """The bundle's root file: the first of ``databricks.yml``, ``databricks.yaml``,
    ``bundle.yml``, ``bundle.yaml`` in ``root``."""
    for name in BUNDLE_FILES:
        if (root / name).is_file():
            return root / name
    raise ConfigError(BUNDLE_FILES[0], "", f"no bundle file in {root} ({', '.join(BUNDLE_FILES)})")


def is_databricks_bundle(root: Path) -> bool:
    """Whether the bundle's root file is a ``databricks.yml``/``.yaml`` (written for Databricks)."""
    return root_file(root).name.startswith("databricks.")


# ---------------------------------------------------------------- paths


def rebaser(from_dir: Path, to_dir: Path) -> Rebase:
    """A function moving a path relative to ``from_dir`` to one relative to ``to_dir``."""
    same = os.path.normpath(from_dir.resolve()) == os.path.normpath(to_dir.resolve())

    def rebase(value: Any) -> Any:
        if same or not isinstance(value, str) or not value or "${" in value:
            return value
        if value.startswith(("/", "~")) or _URI.match(value):
            return value
        absolute = os.path.normpath(from_dir.resolve() / value)
        relative = Path(os.path.relpath(absolute, to_dir.resolve())).as_posix()
        if relative in (".", "..") or relative.startswith("../"):
            return relative
        return f"./{relative}"

    return rebase


def _set(mapping: Any, key: str, rebase: Rebase) -> None:
    if isinstance(mapping, dict) and key in mapping:
        mapping[key] = rebase(mapping[key])


def _rebase_libraries(libraries: Any, rebase: Rebase) -> None:
    for library in libraries if isinstance(libraries, list) else []:
        for key in ("whl", "jar", "egg", "requirements"):
            _set(library, key, rebase)
        if isinstance(library, dict):
            for kind, key in (("notebook", "path"), ("file", "path"), ("glob", "include")):
                _set(library.get(kind), key, rebase)


def _rebase_task(task: Any, rebase: Rebase, in_git: bool) -> None:
    if not isinstance(task, dict):
        return
    for kind, key in (
        ("notebook_task", "notebook_path"),
        ("spark_python_task", "python_file"),
        ("dbt_task", "project_directory"),
    ):
        spec = task.get(kind)
        if isinstance(spec, dict) and not in_git and spec.get("source") != "GIT":
            _set(spec, key, rebase)
    sql = task.get("sql_task")
    sql_file = sql.get("file") if isinstance(sql, dict) else None
    if isinstance(sql_file, dict) and not in_git and sql_file.get("source") != "GIT":
        _set(sql_file, "path", rebase)
    _rebase_libraries(task.get("libraries"), rebase)
    loop = task.get("for_each_task")
    if isinstance(loop, dict):
        _rebase_task(loop.get("task"), rebase, in_git)


def _rebase_dependency(rebase: Rebase) -> Rebase:
    """Environment dependencies are package specs; only ``./`` and ``../`` ones are paths."""

    def dependency(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(("./", "../")):
            return rebase(value)
        return value

    return dependency


def _rebase_job(job: Any, rebase: Rebase) -> None:
    if not isinstance(job, dict):
        return
    in_git = bool(job.get("git_source"))
    for task in job.get("tasks") or []:
        _rebase_task(task, rebase, in_git)
    for env in job.get("environments") or []:
        spec = env.get("spec") if isinstance(env, dict) else None
        if isinstance(spec, dict) and isinstance(spec.get("dependencies"), list):
            spec["dependencies"] = [_rebase_dependency(rebase)(d) for d in spec["dependencies"]]


def rebase_resources(resources: Any, rebase: Rebase) -> None:
    """Rebase, in place, the local paths of a ``resources`` mapping."""
    if not isinstance(resources, dict):
        return
    for kind, items in resources.items():
        for item in (items or {}).values() if isinstance(items, dict) else []:
            if kind == "jobs":
                _rebase_job(item, rebase)
            elif kind == "pipelines" and isinstance(item, dict):
                _rebase_libraries(item.get("libraries"), rebase)
                _set(item, "root_path", rebase)
            else:  # dashboards, apps, …
                for key in ("file_path", "source_code_path"):
                    _set(item, key, rebase)


def rebase_document(doc: dict[str, Any], rebase: Rebase) -> dict[str, Any]:
    """A copy of one bundle file's mapping with its local paths rebased."""
    out = copy.deepcopy(doc)
    rebase_resources(out.get("resources"), rebase)
    for target in (out.get("targets") or {}).values():
        if isinstance(target, dict):
            rebase_resources(target.get("resources"), rebase)
    for artifact in (out.get("artifacts") or {}).values():
        _set(artifact, "path", rebase)
    sync = out.get("sync")
    if isinstance(sync, dict) and isinstance(sync.get("paths"), list):
        sync["paths"] = [rebase(p) for p in sync["paths"]]
    return out


# ---------------------------------------------------------------- merging


def _merge(into: dict[str, Any], part: Mapping[str, Any], where: str, file: str) -> None:
    """Deep-merge ``part`` into ``into``; a resource defined twice is an error."""
    for key, value in part.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in into:
            into[key] = copy.deepcopy(value)
        elif isinstance(into[key], dict) and isinstance(value, Mapping):
            if re.fullmatch(r"resources\.[^.]+\.[^.]+", path):
                raise ConfigError(file, path, "defined again (already defined in another file)")
            _merge(into[key], value, path, file)
        elif isinstance(into[key], list) and isinstance(value, list):
            into[key] = [*into[key], *copy.deepcopy(value)]
        else:
            into[key] = copy.deepcopy(value)


def _included(root: Path, bundle_file: Path, patterns: list[str]) -> list[tuple[Path, str]]:
    """The files ``include`` names, in order; a pattern matching nothing is an error in a
    lakehouse bundle.yml and allowed in a databricks.yml (as Databricks allows it)."""
    files: list[tuple[Path, str]] = []
    for i, pattern in enumerate(patterns):
        matches = [p for p in sorted(root.glob(str(pattern))) if p.is_file() and p != bundle_file]
        if not matches and not bundle_file.name.startswith("databricks."):
            raise ConfigError(
                bundle_file.name, f"include[{i}]", f"pattern {pattern!r} matches no file"
            )
        files += [(p, p.relative_to(root).as_posix()) for p in matches if p not in dict(files)]
    return files


def merged_bundle(root: Path, out_dir: Path | None = None) -> dict[str, Any]:
    """The root file with its ``include`` files merged in (``include`` itself dropped), the
    lakehouse ``conf/`` sections left out, local paths relative to ``out_dir`` (default:
    the root). ``${...}`` references are kept as written."""
    out_dir = out_dir or root
    path = root_file(root)
    top = read_yaml(path, path.name)
    patterns = top.get("include") or []
    doc = rebase_document({k: v for k, v in top.items() if k != "include"}, rebaser(root, out_dir))
    for file, rel in _included(root, path, list(patterns)):
        part = {k: v for k, v in read_yaml(file, rel).items() if k in FRAGMENT_KEYS}
        _merge(doc, rebase_document(part, rebaser(file.parent, out_dir)), "", rel)
    return doc


# ---------------------------------------------------------------- what Databricks would reject


def _strip_task(job: str, task: dict[str, Any], notes: list[str]) -> None:
    key = task.get("task_key")
    if "python_function_task" in task:
        function = (task["python_function_task"] or {}).get("function")
        raise DabExportError(
            f"job {job}, task {key}: a python_function_task ({function}) has no Databricks "
            "equivalent; give it a jobs/ script (TASK = that function) as a spark_python_task, "
            "or export other jobs with --job"
        )
    if "run_as" in task:
        run_as = task.pop("run_as")
        who = ", ".join(str(v) for v in (run_as or {}).values())
        notes.append(f"job {job}, task {key}: run_as {who} (Databricks runs every task as the job)")


def _strip_webhook_urls(name: str, job: dict[str, Any], notes: list[str]) -> None:
    """Webhook ``url`` entries are the lakehouse's; Databricks names destination ids."""
    hooks = job.get("webhook_notifications")
    if not isinstance(hooks, dict):
        return
    for event, entries in list(hooks.items()):
        entries = entries if isinstance(entries, list) else []
        urls = [e["url"] for e in entries if isinstance(e, dict) and "url" in e]
        if urls:
            notes.append(
                f"job {name}: webhook_notifications.{event} {', '.join(urls)} "
                "(Databricks wants notification destination ids: {id: ...})"
            )
        kept = [e for e in entries if not (isinstance(e, dict) and "url" in e)]
        if kept:
            hooks[event] = kept
        else:
            del hooks[event]
    if not hooks:
        del job["webhook_notifications"]


def _strip_job(name: str, job: dict[str, Any], notes: list[str]) -> None:
    if "max_parallel_tasks" in job:
        notes.append(f"job {name}: max_parallel_tasks {job.pop('max_parallel_tasks')}")
    _strip_webhook_urls(name, job, notes)
    schedule = job.get("schedule")
    if isinstance(schedule, dict) and "cron_expression" in schedule:
        cron = str(schedule.pop("cron_expression"))
        try:
            schedule["quartz_cron_expression"] = parse(cron, "cron").to_quartz()
        except CronError as exc:
            raise DabExportError(f"job {name}: cron expression {cron!r}: {exc.why}") from None
    for task in job.get("tasks") or []:
        if isinstance(task, dict):
            _strip_task(name, task, notes)


def strip_lakehouse_keys(doc: dict[str, Any]) -> list[str]:
    """Remove, in place, the keys Databricks does not know; what was removed, as notes."""
    notes: list[str] = []
    if "allowed_external_paths" in doc:
        doc.pop("allowed_external_paths")
    for name, target in (doc.get("targets") or {}).items():
        if isinstance(target, dict) and "engine" in target:
            target.pop("engine")
            notes.append(f"target {name}: the lakehouse engine")
    for name, job in ((doc.get("resources") or {}).get("jobs") or {}).items():
        _strip_job(name, job, notes)
    return notes


def export_databricks_bundle(
    root: Path,
    *,
    bundle_dir: Path | None = None,
    jobs: Sequence[str] | None = None,
    target: str | None = None,
    var_overrides: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """A Databricks bundle written for Databricks, as one mapping, and notes on what left.

    ``jobs`` keeps only those jobs; ``var_overrides`` (the export's ``--var``) go into
    ``target``'s variables. Written elsewhere than the root, ``sync.paths`` names the root.
    """
    bundle_dir = (bundle_dir or root).resolve()
    doc = merged_bundle(root, bundle_dir)
    if jobs:
        defined = (doc.get("resources") or {}).get("jobs") or {}
        for name in jobs:
            if name not in defined:
                raise ConfigError(
                    root_file(root).name,
                    f"resources.jobs.{name}",
                    f"no such job (defined: {', '.join(defined) or 'none'})",
                )
        doc["resources"]["jobs"] = {k: v for k, v in defined.items() if k in jobs}
    notes = strip_lakehouse_keys(doc)
    if var_overrides and target:
        entry = doc.setdefault("targets", {}).setdefault(target, {}) or {}
        doc["targets"][target] = entry
        entry.setdefault("variables", {}).update(var_overrides)
    if bundle_dir != root.resolve():
        sync = doc.setdefault("sync", {})
        paths = sync.get("paths") or [Path(os.path.relpath(root.resolve(), bundle_dir)).as_posix()]
        sync["paths"] = paths
    return doc, notes
