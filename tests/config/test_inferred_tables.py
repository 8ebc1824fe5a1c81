"""A catalog table may declare no columns (inferred, or from its Delta log); options of
inferred file sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.config.catalog import TableSpec
from lakehouse.config.sources import FileSource
from lakehouse.core.errors import ConfigError
from tests.pipelines.bronze.test_infer import inferred_project


def test_a_table_without_columns_is_valid_and_its_keys_are_checked_later() -> None:
    spec = TableSpec.model_validate({"layer": "silver", "keys": ["id"]})
    assert (spec.columns, spec.keys) == ([], ["id"])
    with pytest.raises(ValueError, match="keys names 'nope', which is not a declared column"):
        TableSpec.model_validate(
            {"layer": "silver", "columns": [{"name": "id", "type": "int"}], "keys": ["nope"]}
        )


def test_inferred_bronze_table_gets_no_metadata_columns_and_infers_by_default(
    tmp_path: Path,
) -> None:
    project = inferred_project(tmp_path)
    assert project.table("c.bronze.events").spec.columns == []
    source = project.sources["drop"]
    assert isinstance(source, FileSource)
    assert (
        source.schema_drift,
        source.infer_column_types,
        source.infer_max_files,
        source.infer_max_bytes,
        source.schema_location,
    ) == (None, True, 10, 50 << 20, None)


def test_schema_location_outside_the_project_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        inferred_project(tmp_path, extra="    schema_location: /elsewhere/schemas")
    assert str(err.value).startswith(
        "conf/c.yml: sources.drop.schema_location: /elsewhere/schemas is outside the project"
    )
