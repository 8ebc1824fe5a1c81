"""Write a new project from a template (``lakehouse init``): bundle.yml, conf/, jobs/, a
sample landing file, a .gitignore and a README, ready for ``lakehouse run``.

Templates are package data under ``lakehouse/templates/<name>/``: a project tree whose text
files are Jinja2 templates (``{{ name }}`` is the project name; ``${var.x}`` is left for the
bundle loader). The ``jobs/`` entry points are written for the scripts ``bundle.yml`` names.
With ``from_path`` the ``minimal`` template's sample source is replaced by sources
describing the given files (see :mod:`lakehouse.file_sniff`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from lakehouse.core.errors import LakehouseError
from lakehouse.file_sniff import SniffedSource, identifier, sniff_sources

TEMPLATES = ("minimal", "medallion", "mlops")
DEFAULT_TEMPLATE = "minimal"
SAMPLE_LANDING = "data/landing"

# jobs/<script>.py -> (docstring, usage tail, module, task function)
JOB_SCRIPTS: dict[str, tuple[str, str, str, str]] = {
    "ingest_bronze": (
        "Ingest new file drops into the Bronze tables.",
        "[--sources NAME...]",
        "lakehouse.pipelines.bronze.ingest",
        "ingest_bronze",
    ),
    "refine_silver": (
        "Conform, check, dedupe and MERGE Bronze into the Silver tables.",
        "[TABLE]... [--full-refresh]",
        "lakehouse.pipelines.silver.refine",
        "refine_silver",
    ),
    "build_gold": (
        "Rebuild the Gold tables from Silver.",
        "[task parameters]",
        "lakehouse.pipelines.gold",
        "build_gold",
    ),
    "train_model": (
        "Train, log and register the configured models in MLflow.",
        "[MODEL]... [--force]",
        "lakehouse.pipelines.ml.train",
        "train_models",
    ),
    "score_batch": (
        "Score the Gold scoring tables with each model's @champion.",
        "[task parameters]",
        "lakehouse.pipelines.ml.score",
        "score_batch",
    ),
    "monitor_model": (
        "Monitor each model's champion: drift, data quality, performance, A/B.",
        "[--as-of ISO] [MODEL ...]",
        "lakehouse.pipelines.monitoring.monitor",
        "monitor_models",
    ),
}

_PYTHON_FILE = re.compile(r"python_file:\s*jobs/([A-Za-z0-9_]+)\.py")
_PLAIN = re.compile(r"^[A-Za-z0-9_$/.][A-Za-z0-9_./$()-]*$")
_PLAIN_BLOCK = re.compile(r"^[A-Za-z0-9_$/.][A-Za-z0-9_./${}()-]*$")  # braces: not in {...}
_YAML_WORDS = frozenset({"yes", "no", "y", "n", "on", "off", "true", "false", "null", "~"})


class InitError(LakehouseError):
    """The project cannot be written (the message says why)."""


@dataclass(frozen=True)
class InitResult:
    """What ``init`` wrote."""

    directory: Path
    name: str
    template: str
    files: tuple[str, ...]
    sources: tuple[str, ...]


def init_project(
    directory: Path,
    template: str = DEFAULT_TEMPLATE,
    from_path: Path | None = None,
    force: bool = False,
) -> InitResult:
    """Write the ``template`` project into ``directory`` (which must be empty unless ``force``)."""
    if template not in TEMPLATES:
        raise InitError(f"unknown template {template!r} (expected one of: {', '.join(TEMPLATES)})")
    if from_path is not None and template != "minimal":
        raise InitError(
            f"--from works with --template minimal (the {template} template builds Silver, "
            "Gold and models on its own sample columns)"
        )
    directory = directory.expanduser().resolve()
    _check_target(directory, force)
    name = identifier(directory.name, fallback="lakehouse")
    root = resources.files("lakehouse") / "templates"
    sources = (
        sniff_sources(from_path) if from_path is not None else _template_sources(root, template)
    )
    context = _context(name, directory, sources, sample=from_path is None)
    rendered = _render_tree(root, template, context, with_sample=from_path is None)
    directory.mkdir(parents=True, exist_ok=True)
    for rel, content in rendered.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return InitResult(directory, name, template, tuple(sorted(rendered)), _source_names(rendered))


def _source_names(rendered: dict[str, bytes]) -> tuple[str, ...]:
    """The source names of the written ``conf/sources.yml``."""
    import yaml

    document = yaml.safe_load(rendered.get("conf/sources.yml", b"{}")) or {}
    return tuple(document.get("sources") or {})


def _check_target(directory: Path, force: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise InitError(f"{directory} is a file, not a directory")
    if directory.exists() and any(directory.iterdir()) and not force:
        raise InitError(f"{directory} is not empty; use --force to write into it anyway")


def _template_sources(root: Any, template: str) -> list[SniffedSource]:
    """The sample sources of a template whose conf is written from sources (``minimal``)."""
    if template != "minimal":
        return []
    landing = root / template / SAMPLE_LANDING
    with resources.as_file(landing) as path:
        return sniff_sources(Path(path))


def _context(
    name: str, directory: Path, sources: list[SniffedSource], *, sample: bool
) -> dict[str, Any]:
    """The template variables: the project name and, per source, its YAML values."""
    external: list[str] = []
    described = []
    for source in sources:
        if sample:
            path = f"${{var.data_root}}/landing/{source.directory.name}"
        elif source.directory.is_relative_to(directory):
            path = source.directory.relative_to(directory).as_posix() or "."
        else:
            path = source.directory.as_posix()
            if path not in external:
                external.append(path)
        files = len(source.files)
        described.append(
            {
                "name": source.name,
                "table": source.name,
                "path": path,
                "glob": source.glob,
                "format": source.format,
                "delimiter": source.delimiter,
                "description": "" if sample else f"{source.format} files in {path} ({files} found)",
            }
        )
    return {"name": name, "sources": described, "external_paths": external, "sample": sample}


def yaml_scalar(value: object, block: bool = False) -> str:
    """``value`` as a YAML scalar: plain when that reads back as the same string, else quoted.

    ``block``: the value is a block mapping's value (``key: value`` on its own line), where
    ``${var.x}`` may stay plain; elsewhere (``{name: value}``) braces are quoted."""
    text = str(value)
    if (
        (_PLAIN_BLOCK if block else _PLAIN).match(text)
        and text.lower() not in _YAML_WORDS
        and not _is_number(text)
    ):
        return text
    return json.dumps(text)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _render_tree(
    root: Any, template: str, context: dict[str, Any], *, with_sample: bool
) -> dict[str, bytes]:
    """Relative path -> content of every file the project gets."""
    import jinja2

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    env.filters["q"] = yaml_scalar
    out: dict[str, bytes] = {}
    for rel, item in _walk(root / template):
        if rel.startswith(SAMPLE_LANDING + "/"):
            if with_sample:
                out[rel] = item.read_bytes()
            continue
        out[rel] = env.from_string(item.read_text(encoding="utf-8")).render(context).encode()
    out[".gitignore"] = (root / "gitignore").read_bytes()
    for script in _PYTHON_FILE.findall(out["bundle.yml"].decode()):
        out[f"jobs/{script}.py"] = job_script(script).encode()
    return out


def _walk(folder: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(relative posix path, traversable) of every file under ``folder``."""
    found: list[tuple[str, Any]] = []
    for item in sorted(folder.iterdir(), key=lambda i: i.name):
        if item.name == "__pycache__":
            continue
        rel = f"{prefix}{item.name}"
        if item.is_dir():
            found.extend(_walk(item, rel + "/"))
        else:
            found.append((rel, item))
    return found


def job_script(script: str) -> str:
    """The thin ``jobs/<script>.py`` entry point: parse the task arguments, run one task."""
    if script not in JOB_SCRIPTS:
        raise InitError(f"no job entry point for jobs/{script}.py")
    doc, usage, module, function = JOB_SCRIPTS[script]
    return (
        f'"""{doc}\n\n'
        f"spark-submit jobs/{script}.py [--target T] [--project-dir DIR] {usage}\n"
        '"""\n\n'
        "from __future__ import annotations\n\n"
        "from lakehouse.bundle.entrypoint import run_task_script\n"
        f"from {module} import {function} as TASK\n\n"
        'if __name__ == "__main__":\n'
        "    raise SystemExit(run_task_script(TASK))\n"
    )
