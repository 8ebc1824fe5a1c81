"""Typed configuration: ``bundle.yml`` plus the ``conf/*.yml`` files it includes."""

from __future__ import annotations

from lakehouse.config.loader import find_bundle_root, load_project, parse_var_overrides
from lakehouse.config.models import EngineSpec
from lakehouse.config.project import Project, TableRef

__all__ = [
    "EngineSpec",
    "Project",
    "TableRef",
    "find_bundle_root",
    "load_project",
    "parse_var_overrides",
]
