"""Result rows as table cells, CSV and JSON lines (pure)."""

from __future__ import annotations

import datetime as dt
import decimal

from pyspark.sql import Row

from lakehouse.core.rows import cell, csv_lines, json_lines

COLUMNS = ["s", "n", "d", "ts", "dec", "b", "bin", "arr", "st"]
ROWS = [
    (
        'a,"b"',
        1.5,
        dt.date(2026, 12, 4),
        dt.datetime(2026, 12, 4, 10, 30),
        decimal.Decimal("12.340"),
        True,
        b"\x01\xff",
        [1, None],
        Row(k="v", m={"x": 1}),
    ),
    ("", None, None, None, decimal.Decimal("7"), False, None, [], None),
]


def test_cells_show_null_and_nested_values_as_json() -> None:
    assert [cell(v) for v in ROWS[0]] == [
        'a,"b"',
        "1.5",
        "2026-12-04",
        "2026-12-04T10:30:00",
        "12.340",
        "true",
        "01ff",
        "[1, null]",
        '{"k": "v", "m": {"x": 1}}',
    ]
    assert cell(None) == "NULL"


def test_csv_quotes_when_needed_and_tells_null_from_empty() -> None:
    assert "".join(csv_lines(COLUMNS, ROWS)) == (
        "s,n,d,ts,dec,b,bin,arr,st\n"
        '"a,""b""",1.5,2026-12-04,2026-12-04T10:30:00,12.340,true,01ff,"[1, null]",'
        '"{""k"": ""v"", ""m"": {""x"": 1}}"\n'
        '"",,,,7,false,,[],\n'
    )


def test_json_lines_keep_column_order_and_types() -> None:
    assert list(json_lines(COLUMNS, ROWS)) == [
        '{"s": "a,\\"b\\"", "n": 1.5, "d": "2026-12-04", "ts": "2026-12-04T10:30:00", '
        '"dec": 12.34, "b": true, "bin": "01ff", "arr": [1, null], '
        '"st": {"k": "v", "m": {"x": 1}}}\n',
        '{"s": "", "n": null, "d": null, "ts": null, "dec": 7, "b": false, "bin": null, '
        '"arr": [], "st": null}\n',
    ]
