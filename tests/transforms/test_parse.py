"""Raw text -> Bronze records (pure, both engines): corrupt records kept, values rescued."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.config.sources import CsvOptions
from lakehouse.transforms.csv_text import parse_csv
from lakehouse.transforms.parse import (
    csv_frame,
    parse_json_lines,
    plain_json_line,
    raw_schema,
    typed_records,
    undeclared_fields,
)


def _lines(spark: SparkSession, *lines: str) -> DataFrame:
    return spark.createDataFrame([(line,) for line in lines], "value string")


def _csv(spark: SparkSession, text: str, declared: list[str], **options: object) -> DataFrame:
    lines = io.StringIO(text, newline="")
    return csv_frame(spark, parse_csv(lines, CsvOptions.model_validate(options), declared))


def _rows(df: DataFrame) -> list[tuple[object, ...]]:
    return sorted((tuple(r) for r in df.collect()), key=repr)


@pytest.mark.transform
def test_parse_csv_lines_keeps_bad_rows_with_reason(spark: SparkSession) -> None:
    text = 'id,name,amount,note\n1,"Smith, Al",3.50,hi\n\n2,bo\n3,"open quote,1,x\n4,cy,x,\r\n'
    parsed = _csv(spark, text, ["id", "name", "amount", "zip"])
    expected = spark.createDataFrame(
        [
            ("1", "Smith, Al", "3.50", None, {"note": "hi"}, None, None),
            (None, None, None, None, None, "malformed CSV: expected 4 fields, got 2", "2,bo"),
            (None, None, None, None, None, "malformed CSV: broken quoting", '3,"open quote,1,x'),
            ("4", "cy", "x", None, {"note": ""}, None, None),
        ],
        raw_schema(["id", "name", "amount", "zip"]),
    )
    assert _rows(parsed) == _rows(expected)


@pytest.mark.transform
def test_parse_json_lines_flags_lines_that_are_not_objects(spark: SparkSession) -> None:
    lines = _lines(
        spark,
        '{"id": 1, "tags": ["a"], "n": null}',
        '{"id": 2, "name":',
        "   ",
        "[1, 2]",
        '{"id": 3}',
    )
    parsed = parse_json_lines(lines, ["id", "name"])
    expected = spark.createDataFrame(
        [
            ("1", None, {"tags": '["a"]', "n": None}, None, None),
            (None, None, None, "malformed JSON: not a JSON object", '{"id": 2, "name":'),
            (None, None, None, "malformed JSON: not a JSON object", "[1, 2]"),
            ("3", None, None, None, None),
        ],
        raw_schema(["id", "name"]),
    )
    assert _rows(parsed) == _rows(expected)


def _raw(spark: SparkSession) -> DataFrame:
    return parse_json_lines(
        _lines(
            spark,
            '{"id": "1", "qty": "2", "color": "red"}',
            '{"id": "2", "qty": "two"}',
            '{"id": "3", "qty": 99999999999}',
            "not json",
        ),
        ["id", "qty"],
    )


TYPED = "id string, qty int, _rescued_data string, _corrupt string, _raw string"


@pytest.mark.transform
def test_typed_records_rescue_policy_keeps_mismatches_and_extras(spark: SparkSession) -> None:
    out = typed_records(_raw(spark), [("id", "string"), ("qty", "int")], "rescue")
    expected = spark.createDataFrame(
        [
            ("1", 2, '{"color":"red"}', None, None),
            ("2", None, '{"qty":"two"}', None, None),
            ("3", None, '{"qty":"99999999999"}', None, None),
            (None, None, None, "malformed JSON: not a JSON object", "not json"),
        ],
        TYPED,
    )
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.transform
def test_typed_records_add_new_columns_policy(spark: SparkSession) -> None:
    raw = _raw(spark)
    extra = undeclared_fields(raw)
    assert extra == ["color"]
    out = typed_records(raw, [("id", "string"), ("qty", "int")], "add_new_columns", extra)
    assert out.columns == ["id", "qty", "color", "_rescued_data", "_corrupt", "_raw"]
    assert sorted((r["id"], r["color"], r["_rescued_data"]) for r in out.collect() if r["id"]) == [
        ("1", "red", None),
        ("2", None, '{"qty":"two"}'),
        ("3", None, '{"qty":"99999999999"}'),
    ]


@pytest.mark.transform
def test_typed_records_fail_policy_only_rescues_type_mismatches(spark: SparkSession) -> None:
    out = typed_records(_raw(spark), [("id", "string"), ("qty", "int")], "fail")
    assert sorted((r["id"], r["_rescued_data"]) for r in out.collect() if r["id"]) == [
        ("1", None),
        ("2", '{"qty":"two"}'),
        ("3", '{"qty":"99999999999"}'),
    ]


def test_parse_json_lines_flags_lines_that_are_not_exactly_one_object(
    spark: SparkSession,
) -> None:
    """A second value, trailing text, a number out of range or a repeated key: corrupt, kept."""
    lines = _lines(
        spark,
        '{"id": "1", "qty": 1e400}',
        '{"id": "2"}{"id": "3"}',
        '{"id": "4"} xyz',
        '{"id": "5", "x": {"y": -1e999}}',
        '{"id": "6", "id": "7"}',
        "{}",
        '{"other": 1}',
    )
    parsed = parse_json_lines(lines, ["id", "qty"])
    one_object = "malformed JSON: not exactly one JSON object, or a number out of range"
    expected = spark.createDataFrame(
        [
            (None, None, None, one_object, '{"id": "1", "qty": 1e400}'),
            (None, None, None, one_object, '{"id": "2"}{"id": "3"}'),
            (None, None, None, one_object, '{"id": "4"} xyz'),
            (None, None, None, one_object, '{"id": "5", "x": {"y": -1e999}}'),
            (None, None, None, "malformed JSON: duplicate key", '{"id": "6", "id": "7"}'),
            (None, None, None, None, None),
            (None, None, {"other": "1"}, None, None),
        ],
        raw_schema(["id", "qty"]),
    )
    assert _rows(parsed) == _rows(expected)


def test_parse_csv_lines_header_quoted_and_repeated(spark: SparkSession) -> None:
    """A quoted header line is the header; a repeated name's later column is kept aside."""
    parsed = _csv(spark, '"id","qty","qty"\n1,2,3\n"id","qty","qty"\n', ["id", "qty"])
    expected = spark.createDataFrame(
        [("1", "2", {"qty__duplicate_3": "3"}, None, None)], raw_schema(["id", "qty"])
    )
    assert _rows(parsed) == _rows(expected)


def test_typed_records_rescue_doubles_out_of_range(spark: SparkSession) -> None:
    """``1e400`` is not Infinity: rescued; a spelled-out infinity is kept."""
    raw = parse_json_lines(
        _lines(spark, '{"x": "1e400"}', '{"x": "-1e400"}', '{"x": "-Infinity"}', '{"x": "2.5"}'),
        ["x"],
    )
    out = typed_records(raw, [("x", "double")], "rescue")
    assert sorted(((r["x"], r["_rescued_data"]) for r in out.collect()), key=repr) == sorted(
        [
            (None, '{"x":"1e400"}'),
            (None, '{"x":"-1e400"}'),
            (float("-inf"), None),
            (2.5, None),
        ],
        key=repr,
    )


@pytest.mark.transform
def test_a_csv_file_of_several_chunks_is_one_frame(spark: SparkSession) -> None:
    text = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(25)) + "bad,row,x\n"
    lines = io.StringIO(text, newline="")
    chunks = parse_csv(lines, CsvOptions.model_validate({}), ["id", "name"], chunk=10)
    parsed = csv_frame(spark, chunks)
    good = [(str(i), f"n{i}", None, None, None) for i in range(25)]
    bad = [(None, None, None, "malformed CSV: expected 2 fields, got 3", "bad,row,x")]
    assert _rows(parsed) == sorted([*good, *bad], key=repr)


# -- the screen of plain JSON lines: same raw shape as running every check on every line --

LANDING = Path(__file__).resolve().parents[1] / "data" / "landing"
ORDER_FIELDS = [
    "order_id",
    "customer_id",
    "order_ts",
    "product",
    "quantity",
    "amount",
    "status",
    "updated_at",
]
# (declared fields, lines, which of them are plain): every JSON lines fixture of
# tests/pipelines/bronze, tests/transforms and tests/reliability, then the cases where a
# cheap screen could be fooled.
SCREEN_CASES: list[tuple[list[str], list[str], str | None]] = [
    (ORDER_FIELDS, (LANDING / "orders_a.jsonl").read_text().splitlines(), None),
    (ORDER_FIELDS, (LANDING / "orders_b.jsonl").read_text().splitlines(), None),
    (
        ["id", "qty", "name", "price"],
        [
            '{"id": "1", "qty": 2, "color": "red"}',
            '{"id": "2", "qty": "many"}',
            '{"id": "1", "qty": 2, "color": "red", "size": "L"}',
            '{"id": "g1", "qty": 1}',
            '{"id": 1, "tags": ["a"], "n": null}',
            '{"id": 2, "name":',
            "[1, 2]",
            '{"id": 3}',
            '{"id": "1", "qty": "2", "color": "red"}',
            '{"id": "3", "qty": 99999999999}',
            '{"id": "1", "qty": 1e400}',
            '{"id": "2"}{"id": "3"}',
            '{"id": "4"} xyz',
            '{"id": "5", "x": {"y": -1e999}}',
            '{"id": "6", "id": "7"}',
            "7",
            '{"other": 1}',
            '{"x": "1e400"}',
            '{"id": 1, "qty": 2, "price": 1, "code": 7, "tags": ["x"], "on": "2024-05-01"}',
            '{"id": 2, "qty": null, "price": 1.5, "code": "A7", "tags": [], "on": "2024-05-02"}',
        ],
        None,
    ),
    (
        ["id", "name", "note"],
        [
            '{"id":"1","name":"a"}',  # plain
            ' {"id" : "1" ,\t"name":"a b"} \r',  # JSON whitespace, CRLF: plain
            '{"name":"Zoë ✓","id":"2"}',  # any key order, raw unicode: plain
            '{"id":"3","name":"q\\"u\\\\o\\/te \\n\\t\\u00e9 x\\":y"}',  # a key end inside a value: checked
            '{"id":"4","name":"\\ud83d\\ude00"}',  # surrogate pair: checked
            '{"id":"5","name":"\\ud800"}',  # lone surrogate
            '{"id":"6","name":"\\udc00x"}',
            '{"id":"7","name":"\\q"}',  # invalid escape
            '{"id":"8","name":"a\tb"}',  # raw control character
            '{"id":"9","name":"\\u0000"}',
            '{"id":"10","id":"11"}',  # duplicate key
            '{"id":"12","\\u0069d":"13"}',  # duplicate key, escaped
            '{"id":"14","name":null}',  # JSON null
            '{"id":"15","name":"a","other":"x"}',  # undeclared
            '{"id":"16","":"x"}',  # empty key
            '{"id":"17"}  {}',
            '{"id":"18"}{}',
            '{"id":"19"} "x"}',
            '{"id":"20",}',  # trailing comma
            "{'id':'21'}",
            '{"id":"22","name":{"a":"b"}}',  # nested object kept as text
            '{"id":"23","name":["a","b"]}',
            '{"id":"24","name":123.450}',  # number kept as its text: plain
            '{"id":"25","name":true}',
            '{"id":"26","note":"x","name":"y"}',
            "{}",
            "\ufeff" + '{"id":"27"}',  # BOM
            '{"id":"28","name":"' + "x" * 300_000 + '"}',  # long line
            '{"id":"29","name":"' + "y" * 1_000_001 + '"}',  # longer than the screen takes
            '"id"',
            "null",
            '{"id":"30"',
            '{"id":"31"}}',
            '{"id": "32", "name": "a" }',
            '{"id":"33","name":"q\\"u\\\\o\\/te \\n\\t\\u00e9 \\uD7FF"}',  # escapes: plain
            '{"id":"34","name":1e5}',
            '{"id":"35","name":-0,"note":false}',
            '{"id":"36","name":1234567890123456789}',
            '{"id":"37","name":123456789012345678.12345678901234567}',
            '{"id":"38","name":1.0E+2}',
            '{"id":"39","name":01}',
        ],
        "11100000010000000000001110010000011010100",  # plain or not, line by line
    ),
]


@pytest.mark.transform
@pytest.mark.parametrize("case", range(len(SCREEN_CASES)))
def test_parse_json_lines_screen_gives_the_same_rows_as_every_check(
    spark: SparkSession, case: int
) -> None:
    declared, texts, plain = SCREEN_CASES[case]
    lines = spark.createDataFrame(list(enumerate(texts)), "n int, value string")
    fast = parse_json_lines(lines, declared).collect()
    reference = parse_json_lines(lines, declared, screen=False).collect()
    assert sorted(map(str, fast)) == sorted(map(str, reference))
    assert len(fast) == len([t for t in texts if t.strip()])
    if plain is not None:
        struct = ", ".join(f"`{name}` string" for name in declared)
        screened = lines.select(
            "n", plain_json_line(F.col("value"), F.from_json("value", struct), declared).alias("p")
        )
        got = [r["p"] for r in screened.orderBy("n").collect()]
        assert "".join(str(int(p)) for p in got) == plain
