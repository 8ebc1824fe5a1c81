"""Build the configured Gold tables: read inputs, apply the transform, overwrite."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import cast

from pyspark.sql import DataFrame

from lakehouse.bundle.context import TaskContext
from lakehouse.errors import ConfigError

log = logging.getLogger(__name__)

GoldTransform = Callable[..., DataFrame]


def load_transform(dotted: str) -> GoldTransform:
    """Import ``package.module:function``."""
    module_name, _, attr = dotted.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError("conf/", dotted, f"cannot import module {module_name!r}: {exc}") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError("conf/", dotted, f"module {module_name!r} has no function {attr!r}")
    return cast(GoldTransform, fn)


def build_gold(ctx: TaskContext) -> None:
    """Rebuild every configured Gold table from its inputs."""
    for name, spec in ctx.project.gold.items():
        transform = load_transform(spec.transform)
        inputs = {alias: ctx.tables.read(table) for alias, table in spec.inputs.items()}
        result = transform(**inputs)
        ctx.tables.overwrite(name, result)
