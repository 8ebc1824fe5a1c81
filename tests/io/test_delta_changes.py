"""How much of a table reading its changes would read, told from the Delta log alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from lakehouse.io.delta_changes import change_read_share, table_changes

DATA = Path(__file__).resolve().parents[1] / "data" / "delta"


def test_an_append_reads_only_its_new_files_and_an_overwrite_reads_everything(
    tmp_path: Path,
) -> None:
    table = tmp_path / "t"
    write_deltalake(table, pa.table({"x": list(range(30))}))
    write_deltalake(table, pa.table({"x": list(range(10))}), mode="append")
    assert change_read_share(str(table), 0, 1) == 10 / 40
    assert change_read_share(str(table), 1, 1) == 0.0
    write_deltalake(table, pa.table({"x": [1, 2]}), mode="overwrite")
    # the 40 rows removed and the 2 added, against the 2 left: far more than the table
    assert change_read_share(str(table), 1, 2) == 42 / 2
    assert change_read_share(table.as_uri(), 0, 1) == 10 / 40


def test_a_file_given_a_deletion_vector_counts_once(tmp_path: Path) -> None:
    """delta-spark deleted rows of the table's one file with a deletion vector (version 2):
    its changes are read from that file, once."""
    table = tmp_path / "dv"
    shutil.copytree(DATA / "deletion_vectors", table)
    assert change_read_share(str(table), 1, 2) == 1.0
    changes = table_changes(str(table), 1, 2, ["id"])
    assert changes.files_read == 1 and changes.added.num_rows == 0


def test_unknown_when_the_log_cannot_tell(tmp_path: Path) -> None:
    table = tmp_path / "t"
    write_deltalake(table, pa.table({"x": [1]}))
    write_deltalake(table, pa.table({"x": [2]}), mode="append")
    (table / "_delta_log" / f"{1:020d}.json").rename(table / "moved.json")
    assert change_read_share(str(table), 0, 1) is None
    assert change_read_share("s3://bucket/t", 0, 1) is None
