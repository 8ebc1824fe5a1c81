"""The CSV parser (pure Python): options, multi-line quoted fields, bad records kept."""

from __future__ import annotations

import io

from lakehouse.config.sources import CsvOptions
from lakehouse.transforms.csv_text import BROKEN_QUOTING, CsvRows, parse_csv

Row = tuple[object, ...]


def _parse(text: str, declared: list[str], **options: object) -> tuple[list[Row], CsvRows]:
    """(declared values..., extra, corrupt, raw) per record, and the last chunk."""
    chunks = list(parse_csv(io.StringIO(text, newline=""), CsvOptions(**options), declared))
    return [r for c in chunks for r in c.records], chunks[-1]


def test_skip_rows_drops_a_junk_first_line() -> None:
    text = "Export generated 2026-12-01 by CRM\nid,name\n1,Ann\n2,Bo\n"
    rows, last = _parse(text, ["id", "name"], skip_rows=1)
    assert rows == [("1", "Ann", None, None, None), ("2", "Bo", None, None, None)]
    assert (last.header, last.header_note) == (["id", "name"], None)


def test_junk_first_line_without_skip_rows_is_the_header() -> None:
    """A junk line with as many fields as the data: every value lands aside, and the header
    is named as matching no declared column."""
    rows, last = _parse("report,2026\nid,name\n1,Ann\n", ["id", "name"])
    assert rows == [
        (None, None, {"report": "id", "2026": "name"}, None, None),
        (None, None, {"report": "1", "2026": "Ann"}, None, None),
    ]
    assert last.header_note == (
        "the header ('report', '2026') matches none of the declared columns (id, name)"
    )


def test_headerless_file_takes_the_declared_columns_in_order() -> None:
    rows, _ = _parse("1,Ann\n2,Bo,extra\n", ["id", "name"], header=False)
    assert rows == [
        ("1", "Ann", None, None, None),
        (None, None, None, "malformed CSV: expected 2 fields, got 3", "2,Bo,extra"),
    ]
    rows, last = _parse("1,Ann\n2,Bo\n", [], header=False)
    assert last.header == ["_c0", "_c1"]
    assert rows == [
        ({"_c0": "1", "_c1": "Ann"}, None, None),
        ({"_c0": "2", "_c1": "Bo"}, None, None),
    ]


def test_quote_escape_comment_and_delimiter_options() -> None:
    text = "# exported\nid;note\n1;'it''s; fine'\n# a comment\n2;'say \\'hi\\''\n"
    rows, _ = _parse(text, ["id", "note"], delimiter=";", quote="'", escape="\\", comment="#")
    assert rows == [("1", "it's; fine", None, None, None), ("2", "say 'hi'", None, None, None)]
    # without the comment option, a comment line is data (here: a ragged record)
    rows, _ = _parse("id,note\n# hi\n1,x\n", ["id", "note"])
    assert rows[0] == (None, None, None, "malformed CSV: expected 2 fields, got 1", "# hi")


def test_a_quoted_field_spanning_lines_is_one_record_with_its_newlines() -> None:
    text = 'id,note\r\n1,"line one\r\nline two\n# not a comment"\r\n2,plain\r\n'
    rows, _ = _parse(text, ["id", "note"], comment="#")
    assert rows == [
        ("1", "line one\r\nline two\n# not a comment", None, None, None),
        ("2", "plain", None, None, None),
    ]
    rows, _ = _parse(text, ["id", "note"], multiline=False)
    assert [r[-2:] for r in rows] == [
        (BROKEN_QUOTING, '1,"line one'),
        ("malformed CSV: expected 2 fields, got 1", "line two"),
        ("malformed CSV: expected 2 fields, got 1", '# not a comment"'),
        (None, None),
    ]


def test_an_unclosed_quote_costs_one_record_not_the_rest_of_the_file() -> None:
    text = 'id,note\n1,"open\n2,b\n3,c\n4,"x"y\n5,e\n6,"never closed\n7,g\n'
    rows, _ = _parse(text, ["id", "note"])
    assert rows == [
        (None, None, None, BROKEN_QUOTING, '1,"open'),
        ("2", "b", None, None, None),
        ("3", "c", None, None, None),
        (None, None, None, BROKEN_QUOTING, '4,"x"y'),
        ("5", "e", None, None, None),
        (None, None, None, BROKEN_QUOTING, '6,"never closed'),
        ("7", "g", None, None, None),
    ]


def test_blank_lines_and_repeated_headers_are_skipped_and_chunks_split() -> None:
    text = "id\n1\n\n   \nid\n2\n3\n"
    chunks = list(parse_csv(io.StringIO(text, newline=""), CsvOptions(), ["id"], chunk=2))
    assert [c.good for c in chunks] == [[["1"], ["2"]], [["3"]]]
    assert next(parse_csv(io.StringIO(""), CsvOptions(), ["id"])).header is None
