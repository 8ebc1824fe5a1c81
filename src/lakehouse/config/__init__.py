"""Typed configuration: ``bundle.yml`` plus the ``conf/*.yml`` files it includes."""

from __future__ import annotations

from lakehouse.config.bundle_spec import EngineSpec
from lakehouse.config.loader import find_bundle_root, load_project, parse_var_overrides
from lakehouse.config.project import Project, TableRef

__all__ = [
    "EngineSpec",
    "Project",
    "TableRef",
    "find_bundle_root",
    "load_project",
    "parse_var_overrides",
]
