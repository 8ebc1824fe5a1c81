"""How Delta tables are read outside the engine (the SQL endpoint's mirror, online features),
written by other engines."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from lakehouse.io.delta_arrow import delta_arrow, latest_commit

DATA = Path(__file__).resolve().parents[1] / "data" / "delta"


def test_a_column_mapped_table_written_by_delta_spark_is_read_with_its_values(
    tmp_path: Path,
) -> None:
    """delta-spark 4.0.1 wrote this table with ``delta.columnMapping.mode = name`` and then
    renamed ``s`` to ``s2``; its files store physical column names. A pyarrow dataset of it
    reads every value as NULL, so such tables are scanned with delta-rs."""
    table = tmp_path / "mapped"
    shutil.copytree(DATA / "column_mapping_renamed", table)
    delta = DeltaTable(str(table))
    assert delta.to_pyarrow_dataset().to_table().column("s2").null_count == 3  # the trap
    served = delta_arrow(delta)
    assert isinstance(served, pa.Table)
    assert sorted(served.to_pylist(), key=lambda r: r["id"]) == [
        {"id": 1, "s2": "a"},
        {"id": 2, "s2": "b"},
        {"id": 3, "s2": "c"},
    ]


def test_latest_commit_is_read_from_the_log_file_names(tmp_path: Path) -> None:
    """The cheap freshness check: the newest commit file's version, None without a log."""
    assert latest_commit(str(tmp_path / "missing")) is None
    table = tmp_path / "t"
    write_deltalake(table, pa.table({"x": [1]}))
    write_deltalake(table, pa.table({"x": [2]}), mode="append")
    assert latest_commit(str(table)) == DeltaTable(table).version() == 1
    assert latest_commit(table.as_uri()) == 1
    assert latest_commit("s3://bucket/t") is None  # told by opening the table instead
