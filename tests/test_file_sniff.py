"""Describing existing files as sources: formats, CSV dialects, headers, Spark types."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.file_sniff import SniffError, identifier, sniff_sources


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _shape(path: Path) -> list[tuple[str, str, str, str | None, list[str], int]]:
    return [
        (s.name, s.glob, s.format, s.delimiter, list(s.columns), len(s.files))
        for s in sniff_sources(path)
    ]


def test_csv_dialects_and_column_names(tmp_path: Path) -> None:
    _write(tmp_path / "a/x.csv", "id,price,ok,day\n1,1.5,true,2024-01-02\n2,,false,2024-01-03\n")
    _write(tmp_path / "b/y.csv", "name;qty\nwidget;3\n")
    _write(tmp_path / "c/z.tsv", "k\tv\nA\t2024-01-02 10:00:00\n")
    assert _shape(tmp_path) == [
        (
            "a",
            "*.csv",
            "csv",
            ",",
            ["id", "price", "ok", "day"],
            1,
        ),
        ("b", "*.csv", "csv", ";", ["name", "qty"], 1),
        ("c", "*.tsv", "csv", "\t", ["k", "v"], 1),
    ]


def test_an_all_text_csv_still_has_a_header(tmp_path: Path) -> None:
    # csv.Sniffer.has_header says no when every column is text; names like these are a header
    _write(tmp_path / "t.csv", "first_name,last_name\nann,lee\nbo,kim\n")
    assert _shape(tmp_path / "t.csv")[0][4] == ["first_name", "last_name"]


def test_json_jsonl_and_parquet(tmp_path: Path) -> None:
    _write(tmp_path / "j/doc.json", json.dumps([{"id": 1, "tags": ["a"]}, {"id": 2, "tags": []}]))
    _write(tmp_path / "l/lines.jsonl", '{"id": "a", "n": 1.5}\n{"id": "b", "n": 2}\n')
    _write(tmp_path / "nd/lines.json", '{"id": 1}\n{"id": 2}\n')  # JSON lines named .json
    (tmp_path / "p").mkdir()
    table = pa.table(
        {"id": pa.array([1], pa.int32()), "amount": pa.array([1], pa.decimal128(12, 2))}
    )
    pq.write_table(table, tmp_path / "p/part-0.parquet")
    assert _shape(tmp_path) == [
        ("j", "*.json", "json", None, ["id", "tags"], 1),
        ("l", "*.jsonl", "jsonl", None, ["id", "n"], 1),
        ("nd", "*.json", "jsonl", None, ["id"], 1),
        ("p", "*.parquet", "parquet", None, ["id", "amount"], 1),
    ]


def test_one_source_per_extension_names_made_unique(tmp_path: Path) -> None:
    _write(tmp_path / "drop/a.csv", "id\n1\n")
    _write(tmp_path / "drop/b.csv", "id\n2\n")
    _write(tmp_path / "drop/c.jsonl", '{"id": 3}\n')
    _write(tmp_path / "drop/readme.txt", "ignored")
    assert [(name, glob, n) for name, glob, _, _, _, n in _shape(tmp_path / "drop")] == [
        ("drop_csv", "*.csv", 2),
        ("drop_jsonl", "*.jsonl", 1),
    ]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.csv": "1,2\n3,4\n"}, "does not look like a header"),
        ({"a.csv": "id,x\n1,2\n", "b.csv": "id;x\n1;2\n"}, "differ in delimiter or header"),
        ({"a.csv": "Order ID,x\n1,2\n"}, "'Order ID' is not an identifier"),
        ({"a.csv": ""}, "empty file"),
        ({"a.txt": "x"}, "no data files"),
    ],
)
def test_refused_with_a_reason(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        _write(tmp_path / "in" / name, text)
    with pytest.raises(SniffError, match=message):
        sniff_sources(tmp_path / "in")


def test_a_missing_path_or_unknown_file_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SniffError, match="no such file or directory"):
        sniff_sources(tmp_path / "nowhere")
    with pytest.raises(SniffError, match=r"unknown file type \.xml; expected \.csv"):
        sniff_sources(_write(tmp_path / "a.xml", "<a/>"))


def test_identifiers() -> None:
    assert identifier("My Orders-2024") == "my_orders_2024"
    assert identifier("2024 drops") == "_2024_drops"
    assert identifier("***") == "data"
