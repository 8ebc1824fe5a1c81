"""Build the configured Gold tables: read inputs, apply the transform, overwrite."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import cast

from pyspark.sql import DataFrame

from lakehouse.bundle.context import TaskContext
from lakehouse.config.loader import import_callable

log = logging.getLogger(__name__)

GoldTransform = Callable[..., DataFrame]


def load_transform(dotted: str) -> GoldTransform:
    """Import ``package.module:function``."""
    return cast(GoldTransform, import_callable(dotted))


def build_gold(ctx: TaskContext) -> None:
    """Rebuild every configured Gold table from its inputs."""
    for name, spec in ctx.project.gold.items():
        transform = load_transform(spec.transform)
        inputs = {alias: ctx.tables.read(table) for alias, table in spec.inputs.items()}
        result = transform(**inputs)
        ctx.tables.overwrite(name, result)
