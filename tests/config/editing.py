"""Edit a copy of the demo bundle and load it: shared by the config tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lakehouse.config import load_project
from lakehouse.core.errors import ConfigError

FEATURES = "${var.catalog}.gold.customer_features"
DAILY_SALES = "${var.catalog}.gold.daily_sales"


def edit_yaml(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    """Apply ``edit`` to the YAML document at ``path``."""
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def load_error(project_dir: Path, **kwargs: object) -> ConfigError:
    """The ConfigError loading the bundle at ``project_dir`` raises."""
    with pytest.raises(ConfigError) as info:
        load_project(project_dir, **kwargs)  # type: ignore[arg-type]
    return info.value


def edit_gold(project_dir: Path, table: str, **changes: object) -> None:
    """Set (or, with None, remove) keys of one Gold table in conf/pipelines.yml."""

    def edit(d: dict) -> None:
        spec = d["gold"][table]
        for k, v in changes.items():
            if v is None:
                spec.pop(k, None)
            else:
                spec[k] = v

    edit_yaml(project_dir / "conf" / "pipelines.yml", edit)


def edit_model(project_dir: Path, edit) -> None:  # type: ignore[no-untyped-def]
    """Apply ``edit`` to the churn model in conf/models.yml."""
    edit_yaml(project_dir / "conf" / "models.yml", lambda d: edit(d["models"]["churn"]))
