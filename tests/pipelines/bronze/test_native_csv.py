"""The engine's CSV reader for plain files: the same Bronze rows as the driver's text parse.

Every CSV fixture of the text-path tests (test_csv, test_ingest, test_infer, test_decode,
tests/reliability/test_bad_files, tests/transforms/test_csv_text) plus the cases where a
reader could silently differ (empty fields, whitespace, ``null`` text, CRLF, BOM, missing or
extra columns, a line over the csv field limit ...) is ingested twice, once with the fast
path and once with ``csv.native_reader: false``: Bronze rows, counts, warnings and the
processed-files log must be identical, and each file must take the path expected of it.
"""

from __future__ import annotations

import codecs
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from pyspark.sql import SparkSession

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import Project, load_project
from lakehouse.config.sources import CsvOptions
from lakehouse.io.delta import DeltaStore
from lakehouse.pipelines.bronze.ingest import IngestSummary, ingest_source
from lakehouse.pipelines.bronze.native_csv import PlainCsv, plain_csv
from tests.support import session_engine

DATA = Path(__file__).resolve().parents[2] / "data" / "landing"
BUNDLE = """
bundle: {name: t}
include: [conf/*.yml]
variables: {data_root: {default: ./data}}
targets: {local: {default: true}}
"""
COLUMNS = [
    {"name": "id", "type": "string"},
    {"name": "name", "type": "string"},
    {"name": "qty", "type": "int"},
    {"name": "price", "type": "double"},
]
ROWS = "id,qty,price,name\n1,10,1.25,Zoë\n2,20,2.5,Ünal\n"
CSV_A = (
    "id,name,amount,day,seen_at,active\n"
    "1,Ann,2.5,2024-01-02,2024-01-02T10:00:00,true\n"
    "2,Bo,3,2024-01-03,2024-01-03 11:30:00,false\n"
)


@dataclass(frozen=True)
class Case:
    """One landed file, the source's options, and whether the engine should read it."""

    name: str
    data: bytes
    native: bool
    csv: dict[str, object] = field(default_factory=dict)
    source: dict[str, object] = field(default_factory=dict)


def _case(name: str, text: str | bytes, native: bool, **csv: object) -> Case:
    return Case(name, text.encode() if isinstance(text, str) else text, native, csv)


CASES = [
    # clean files: the engine reads them
    _case("rows", ROWS, True),
    _case("customers_a", (DATA / "customers_a.csv").read_bytes(), False),  # quoted field
    _case("infer_a", CSV_A, True),
    _case("infer_b", "id,name,amount,day,seen_at,active,score\n5,Ed,1,,,true,9\n", True),
    _case("infer_c", "id,v\n1,2\n", True),
    _case("good", "id,name,qty\n9,Di,1\n", True),
    _case("empty_fields", "id,name,qty,price\n1,,,\n,x, 3 ,\n , ,  ,\t\n", True),
    _case("null_text", "id,name,qty,price\nnull,NULL,NaN,NaN\n\\N,None,-,inf\n", True),
    _case("no_final_newline", "id,name,qty\n1,a,2\n2,b,3", True),
    _case("crlf", ROWS.replace("\n", "\r\n"), True),
    _case("bom", codecs.BOM_UTF8 + ROWS.encode(), True),
    _case("duplicate_header", "id,qty,qty,price,name\n1,10,11,1.25,a\n", True),
    _case("overflow", "id,qty,price,name\n1,10,1e400,a\n2,20,-1e400,b\n3,30,Infinity,c\n", True),
    _case("junk_same_width", "report,crm,2026\nid,name,qty\n1,Ann,3\n2,Bo,4\n", True),
    _case("header_only_extra", "id,note,extra\n1,,\n", True),
    _case("no_declared_column", "customer,amount,day\nC1,1,x\n", True),
    _case("backslash", "id,name,qty\n1,a\\b,2\n2,\\,3\n", True),
    _case("tab", "id\tname\tqty\n1\ta b\t2\n", True, delimiter="\t"),
    _case("headerless", "1,Ann,3,1.5\n2,Bo,4,2\n", True, header=False),
    _case("other_quote_char", 'id,name,qty\n1,"a",2\n', True, quote="'"),
    # files the text path must parse: each a way a reader could differ
    _case("junk_first_line", "Exported from CRM on 2026-12-01\nid,name,qty\n1,Ann,3\n", False),
    _case(
        "skip_rows", "Exported from CRM on 2026-12-01\nid,name,qty\n1,Ann,3\n", False, skip_rows=1
    ),
    _case("ragged", 'id,name,qty\n1,Ann,3\n2,Bo\n3\n4,"Di,\n5,Ed,6,7\n', False),
    _case("short_line", "id,name,qty\n1,Ann,3\n2,Bo\n", False),
    _case("long_line", "id,name,qty\n1,Ann,3\n2,Bo,4,5\n", False),
    _case("header_only", "customer,amount,day\n", False),
    _case("empty", "", False),
    _case("blank_lines", "id,name,qty\n1,a,2\n\n   \n2,b,3\n", False),
    _case("trailing_blank", "id,name,qty\n1,a,2\n  ", False),
    _case("repeated_header", "id,name,qty\n1,a,2\nid,name,qty\n2,b,3\n", False),
    _case("repeated_header_crlf", "id,name,qty\r\n1,a,2\r\nid,name,qty\r\n", False),
    _case("cr_only", ROWS.replace("\n", "\r"), False),
    _case("lone_cr", "id,name,qty\n1,a\rb,2\n", False),
    _case("quoted_header", '"id","qty","price","name"\n1,10,1.25,Zo\n', False),
    _case("quoted_newline", 'id,name,qty\r\n1,"line one\r\nline two",2\r\n', False),
    _case("unclosed_quotes", 'id,name,qty\n1,"open,2\n2,b,3\n4,"x"y,5\n', False),
    _case("comment_line", "id,name,qty\n# note,x,y\n1,a,2\n", False, comment="#"),
    _case("comment_not_set", "id,name,qty\n# note,x,y\n1,a,2\n", True),
    _case("escape_char", "id,name,qty\n1,a\\,b,2\n", False, escape="\\"),
    _case(
        "options",
        "# generated\nid;name;qty\n1;'Ann; \\'the\\' first';3\n# note\n2;'Bo\r\nsecond';4\r\n",
        False,
        delimiter=";",
        quote="'",
        escape="\\",
        comment="#",
    ),
    _case("one_column", "id\n1\n \n2\n", False),
    _case("headerless_ragged", "1,Ann,3,1.5\n2,Bo,extra\n", False, header=False),
    _case("headerless_bom", codecs.BOM_UTF8 + b"1,Ann,3,1.5\n", False, header=False),
    _case("line_over_field_limit", "id,name,qty\n1," + "x" * 140_000 + ",2\n", False),
    Case("latin1_declared", ROWS.encode("latin-1"), False, source={"encoding": "latin-1"}),
    _case("utf16_bom", ROWS.encode("utf-16"), False),
    _case("gzip", gzip.compress(ROWS.encode(), mtime=0), False),
    _case("latin1_undeclared", ROWS.encode("latin-1"), False),  # quarantined whole
]


def _groups() -> dict[str, list[Case]]:
    """Cases by source configuration (one project per configuration)."""
    out: dict[str, list[Case]] = {}
    for case in CASES:
        key = json.dumps([case.csv, case.source], sort_keys=True)
        out.setdefault(key, []).append(case)
    return out


def _project(root: Path, cases: list[Case], *, native: bool) -> Project:
    (root / "conf").mkdir(parents=True)
    (root / "bundle.yml").write_text(BUNDLE)
    first = cases[0]
    conf = {
        "catalog": {
            "name": "c",
            "storage_root": "${var.data_root}/tables",
            "schemas": {"bronze": {"tables": {"t": {"layer": "bronze", "columns": COLUMNS}}}},
        },
        "sources": {
            "drop": {
                "kind": "files",
                "path": "${var.data_root}/landing",
                "glob": "*.csv",
                "format": "csv",
                "csv": {**first.csv, "native_reader": native},
                "target": "c.bronze.t",
                **first.source,
            }
        },
    }
    (root / "conf" / "c.yml").write_text(yaml.safe_dump(conf))
    landing = root / "data" / "landing"
    landing.mkdir(parents=True)
    for case in cases:
        (landing / f"{case.name}.csv").write_bytes(case.data)
    return load_project(root)


def _ingest(spark: SparkSession, project: Project) -> tuple[TaskContext, IngestSummary]:
    tables = DeltaStore(spark, project, session_engine(spark))
    tables.register_all()
    report = RunReport(job="t", run_id="r1", target="local", engine=session_engine(spark))
    ctx = TaskContext(spark=spark, project=project, tables=tables, report=report, task_key="t")
    return ctx, ingest_source(ctx, "drop")


def _landed(ctx: TaskContext, root: Path) -> dict[str, object]:
    """Everything the ingest produced, with the project's root taken out of paths."""
    bronze = [
        {
            k: (v.replace(str(root), "<root>") if isinstance(v, str) else v)
            for k, v in r.asDict().items()
            if k != "_ingested_at"
        }
        for r in ctx.tables.read("c.bronze.t").collect()
    ]
    logged = [
        (Path(r["path"]).name, r["rows"], r["corrupt_rows"])
        for r in ctx.tables.read("c.meta.processed_files").collect()
    ]
    counters = dict(ctx.report.counters["source drop"])
    counters.pop("csv_native_files")
    counters.pop("csv_text_files")
    return {
        "bronze": sorted(repr(r) for r in bronze),  # repr: NaN equals NaN
        "logged": sorted(logged),
        "counters": counters,
        "warnings": [w.replace(str(root), "<root>") for w in ctx.report.warnings],
        "notes": ctx.report.notes,
    }


# On JVM Spark too (marker `delta`) for the groups with a file the engine's reader reads: the
# others take the text path on every engine.
@pytest.mark.parametrize(
    "group",
    [
        pytest.param(g, id=g[0].name, marks=[pytest.mark.delta] if any(c.native for c in g) else [])
        for g in _groups().values()
    ],
)
def test_the_fast_path_lands_exactly_what_the_text_parse_lands(
    spark: SparkSession, tmp_path: Path, group: list[Case]
) -> None:
    fast_ctx, fast = _ingest(spark, _project(tmp_path / "fast", group, native=True))
    text_ctx, text = _ingest(spark, _project(tmp_path / "text", group, native=False))
    assert _landed(fast_ctx, tmp_path / "fast") == _landed(text_ctx, tmp_path / "text")
    decodable = [c for c in group if c.name != "latin1_undeclared"]
    expected_native = sum(c.native for c in decodable)
    assert (fast.csv_native_files, fast.csv_text_files) == (
        expected_native,
        len(decodable) - expected_native,
    )
    assert (text.csv_native_files, text.csv_text_files) == (0, len(decodable))
    counters = fast_ctx.report.counters["source drop"]
    assert counters["csv_native_files"] == expected_native


def test_a_clean_file_is_read_by_the_engine(spark: SparkSession, tmp_path: Path) -> None:
    """Observable in the summary and the run report's counters."""
    project = _project(tmp_path / "p", [_case("rows", ROWS, True)], native=True)
    ctx, summary = _ingest(spark, project)
    assert (summary.rows, summary.corrupt_rows, summary.csv_native_files) == (2, 0, 1)
    assert ctx.report.counters["source drop"]["csv_text_files"] == 0
    rows = ctx.tables.read("c.bronze.t").orderBy("id").collect()
    assert [(r["id"], r["name"], r["qty"], r["price"]) for r in rows] == [
        ("1", "Zoë", 10, 1.25),
        ("2", "Ünal", 20, 2.5),
    ]


# ---------------------------------------------------------------- the check itself (pure)


def _plain(text: bytes, block: int = 1 << 20, **options: object) -> PlainCsv | str:
    blocks = [text[i : i + block] for i in range(0, len(text), block)]
    return plain_csv(blocks, CsvOptions(**options), ["a", "b"], bom=text.startswith(b"\xef"))


def test_the_check_reads_any_block_boundaries_the_same() -> None:
    text = b"a,b\r\n" + b"".join(b"%d,x%d\r\n" % (i, i) for i in range(200))
    for block in (1, 2, 3, 7, 64, 1 << 20):
        assert _plain(text, block) == PlainCsv(["a", "b"], None, 200)
    ragged = text + b"1,2,3\n4,5\n"
    assert [_plain(ragged, block) for block in (1, 5, 1 << 20)] == [
        "has blank lines or lines with a different number of fields"
    ] * 3
    repeated = text + b"a,b\n"
    assert {_plain(repeated, block) for block in (1, 5, 1 << 20)} == {"repeats its header line"}


def test_the_check_names_why_a_file_is_not_plain() -> None:
    assert _plain(b'a,b\n1,"x"\n') == "has the character '\"' (quote or escape)"
    assert _plain(b"a,b\n1,x\r2,y\n") == "has a carriage return that does not end a line"
    assert _plain(b"a,b\n#,x\n", comment="#") == "has comment lines"
    assert _plain(b"a,b\n1,x\n", skip_rows=1) == "skip_rows is set"
    assert _plain(b"a\n1\n") == "fewer than two columns, too many, or repeated names"
    assert _plain(b"a,b\n") == "no data lines"
    assert _plain(b"a,b\n1,2\n", delimiter="§") == (
        "a non-ASCII (or line break) delimiter, quote, escape or comment character"
    )
    assert _plain(b"\xef\xbb\xbfa,b\n1,2") == PlainCsv(["a", "b"], None, 1)
    assert _plain(b"x,y\n1,2\n") == PlainCsv(
        ["x", "y"], "the header ('x', 'y') matches none of the declared columns (a, b)", 1
    )
