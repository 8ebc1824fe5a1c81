"""Bad input classes as fixtures: for each, where every line of the landed files went.

Each case lands one bad file next to a good one in a fresh project, ingests the source once
and accounts for every data line of the bad file: landed as a row, kept as a corrupt row
with its text in ``_raw``, or kept with the whole file (quarantined: one corrupt row pointing
at a byte-exact copy; or refused and reported, for a symlink that leaves the landing root).
The good file must land in full (the rest of the source proceeds). The tally prints the
table ``class | cases | kept | lost`` at the end of the module (``pytest -s``).
"""

from __future__ import annotations

import codecs
import gzip
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import Project, load_project
from lakehouse.io.delta import DeltaStore
from lakehouse.pipelines.bronze.ingest import ingest_file_source, ingest_source
from tests.support import session_engine

BUNDLE = """
bundle: {name: t}
include: [conf/*.yml]
variables: {data_root: {default: ./data}}
targets: {local: {default: true}}
"""
CONF = """
catalog:
  name: c
  storage_root: ${{var.data_root}}/tables
  schemas:
    bronze:
      tables:
        events:
          layer: bronze
          columns:
            - {{name: id, type: string}}
            - {{name: qty, type: int}}
            - {{name: price, type: double}}
            - {{name: name, type: string}}
sources:
  drop:
    kind: files
    path: ${{var.data_root}}/landing
    glob: "*.{ext}"
    format: {fmt}
    target: c.bronze.events
{options}
"""
GOOD = {
    "csv": b"id,qty,price,name\ng1,1,1.5,ok\ng2,2,2.5,ok\n",
    "jsonl": b'{"id": "g1", "qty": 1}\n{"id": "g2", "qty": 2}\n',
    "json": b'[{"id": "g1", "qty": 1}, {"id": "g2", "qty": 2}]',
}


@dataclass(frozen=True)
class Case:
    """One bad input: the file, how the source is configured, and where each line must go."""

    kind: str  # the class of fault (the report table's rows)
    name: str
    data: bytes
    fmt: str = "csv"
    options: dict[str, object] = field(default_factory=dict)
    landed: dict[str, tuple[object, ...]] = field(
        default_factory=dict
    )  # id -> (qty, price, name, rescued)
    corrupt: tuple[str, ...] = ()  # the _raw text of each corrupt line
    quarantined: bool = False  # the whole file kept aside
    lines: int = 0  # data lines in the file (0: as many as landed + corrupt)

    @property
    def data_lines(self) -> int:
        return self.lines or len(self.landed) + len(self.corrupt)


ROWS = "id,qty,price,name\n1,10,1.25,Zoë\n2,20,2.5,Ünal\n"
TWO_ROWS = {"1": (10, 1.25, "Zoë", None), "2": (20, 2.5, "Ünal", None)}
JSON_ROWS = '{"id": "1", "qty": 10}\n{"id": "2", "qty": 20}\n'
TWO_JSON = {"1": (10, None, None, None), "2": (20, None, None, None)}


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


CASES = [
    # encodings
    Case("encoding", "latin-1 undeclared", ROWS.encode("latin-1"), quarantined=True, lines=2),
    Case(
        "encoding",
        "latin-1 declared",
        ROWS.encode("latin-1"),
        options={"encoding": "latin-1"},
        landed=TWO_ROWS,
    ),
    Case(
        "encoding",
        "cp1252 declared",
        "id,qty,price,name\n1,10,1.25,€uro\n".encode("cp1252"),
        options={"encoding": "cp1252"},
        landed={"1": (10, 1.25, "€uro", None)},
    ),
    Case("encoding", "utf-16 with BOM", ROWS.encode("utf-16"), landed=TWO_ROWS),
    Case("encoding", "utf-32 with BOM", ROWS.encode("utf-32"), landed=TWO_ROWS),
    Case("encoding", "utf-16-le no BOM", ROWS.encode("utf-16-le"), quarantined=True, lines=2),
    Case(
        "encoding",
        "utf-16-le declared",
        ROWS.encode("utf-16-le"),
        options={"encoding": "utf-16-le"},
        landed=TWO_ROWS,
    ),
    Case("encoding", "truncated UTF-8", ROWS.encode()[:-5], quarantined=True, lines=2),
    Case(
        "encoding",
        "invalid UTF-8 past the first chunk",
        (ROWS + "".join(f"{i},1,1.0,x\n" for i in range(3, 150_000))).encode() + b"9,9,9.0,\xff\n",
        quarantined=True,
        lines=150_000,
    ),
    # BOM and header recognition
    Case("bom", "utf-8 BOM csv", codecs.BOM_UTF8 + ROWS.encode(), landed=TWO_ROWS),
    Case(
        "bom", "utf-8 BOM jsonl", codecs.BOM_UTF8 + JSON_ROWS.encode(), fmt="jsonl", landed=TWO_JSON
    ),
    Case(
        "header",
        "quoted header",
        b'"id","qty","price","name"\n1,10,1.25,"Zo\xc3\xab"\n2,20,2.5,\xc3\x9cnal\n',
        landed=TWO_ROWS,
    ),
    Case(
        "header",
        "duplicate header",
        b"id,qty,qty,price,name\n1,10,11,1.25,a\n",
        landed={"1": (10, 1.25, "a", '{"qty__duplicate_3":"11"}')},
    ),
    # line endings
    Case("line endings", "CR only", ROWS.replace("\n", "\r").encode(), landed=TWO_ROWS),
    Case("line endings", "CRLF", ROWS.replace("\n", "\r\n").encode(), landed=TWO_ROWS),
    Case(
        "line endings",
        "CR only jsonl",
        JSON_ROWS.replace("\n", "\r").encode(),
        fmt="jsonl",
        landed=TWO_JSON,
    ),
    # binary and compressed
    Case("binary", "bytes with NUL", bytes(range(256)) * 4, quarantined=True, lines=1),
    Case(
        "binary",
        "png header",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x01" * 64,
        quarantined=True,
        lines=1,
    ),
    Case("gzip", "gzip named .csv", _gzip(ROWS.encode()), landed=TWO_ROWS),
    Case(
        "gzip",
        "gzip latin-1 declared",
        _gzip(ROWS.encode("latin-1")),
        options={"encoding": "latin-1"},
        landed=TWO_ROWS,
    ),
    Case(
        "gzip", "gzip latin-1 undeclared", _gzip(ROWS.encode("latin-1")), quarantined=True, lines=2
    ),
    Case("gzip", "truncated gzip", _gzip(ROWS.encode())[:20], quarantined=True, lines=2),
    # JSON lines that are not exactly one object
    Case(
        "json",
        "number out of range",
        b'{"id": "1", "qty": 1e400}\n{"id": "2", "qty": 20}\n',
        fmt="jsonl",
        landed={"2": (20, None, None, None)},
        corrupt=('{"id": "1", "qty": 1e400}',),
    ),
    Case(
        "json",
        "nested number out of range",
        b'{"id": "1", "meta": {"x": -1e999}}\n{"id": "2", "qty": 20}\n',
        fmt="jsonl",
        landed={"2": (20, None, None, None)},
        corrupt=('{"id": "1", "meta": {"x": -1e999}}',),
    ),
    Case(
        "json",
        "two objects on one line",
        b'{"id": "1", "qty": 10}{"id": "3", "qty": 30}\n{"id": "2", "qty": 20}\n',
        fmt="jsonl",
        landed={"2": (20, None, None, None)},
        corrupt=('{"id": "1", "qty": 10}{"id": "3", "qty": 30}',),
    ),
    Case(
        "json",
        "trailing garbage",
        b'{"id": "1", "qty": 10} xyz\n{"id": "2", "qty": 20}\n',
        fmt="jsonl",
        landed={"2": (20, None, None, None)},
        corrupt=('{"id": "1", "qty": 10} xyz',),
    ),
    Case(
        "json",
        "duplicate key",
        b'{"id": "1", "qty": 10, "qty": 11}\n{"id": "2", "qty": 20}\n',
        fmt="jsonl",
        landed={"2": (20, None, None, None)},
        corrupt=('{"id": "1", "qty": 10, "qty": 11}',),
    ),
    Case(
        "json",
        "array file: repeated key, number out of range",
        b'[{"id": "1", "qty": 10, "qty": 11}, {"id": "2", "qty": 20, "price": 1e400}]',
        fmt="json",
        landed={
            "1": (10, None, None, '{"qty__duplicate_3":"11"}'),
            "2": (20, None, None, '{"price":"1e400"}'),
        },
    ),
    # values out of range for their column
    Case(
        "overflow",
        "1e400 in a double column",
        b"id,qty,price,name\n1,10,1e400,a\n2,20,-1e400,b\n3,30,Infinity,c\n",
        landed={
            "1": (10, None, "a", '{"price":"1e400"}'),
            "2": (20, None, "b", '{"price":"-1e400"}'),
            "3": (30, float("inf"), "c", None),
        },
    ),
]


@dataclass
class Tally:
    """Cases, kept lines and lost lines per class of fault."""

    rows: dict[str, list[int]] = field(default_factory=dict)

    def add(self, kind: str, lines: int, kept: int) -> None:
        row = self.rows.setdefault(kind, [0, 0, 0])
        row[0] += 1
        row[1] += kept
        row[2] += lines - kept

    def table(self) -> str:
        out = ["| class | cases | lines kept | lines lost |", "|---|---|---|---|"]
        out += [f"| {k} | {c} | {kept} | {lost} |" for k, (c, kept, lost) in self.rows.items()]
        return "\n".join(out)


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    result = Tally()
    yield result
    print("\n\nbad input classes (Bronze)\n" + result.table())


def _project(tmp_path: Path, fmt: str, options: dict[str, object]) -> Project:
    root = tmp_path / "proj"
    (root / "conf").mkdir(parents=True)
    (root / "bundle.yml").write_text(BUNDLE)
    extra = "".join(f"    {k}: {v}\n" for k, v in options.items())
    (root / "conf" / "c.yml").write_text(CONF.format(ext=fmt, fmt=fmt, options=extra.rstrip("\n")))
    (root / "data" / "landing").mkdir(parents=True)
    return load_project(root)


def _context(spark: SparkSession, project: Project, run_id: str) -> TaskContext:
    tables = DeltaStore(spark, project, session_engine(spark))
    tables.register_all()
    report = RunReport(job="t", run_id=run_id, target="local", engine=session_engine(spark))
    return TaskContext(spark=spark, project=project, tables=tables, report=report, task_key="t")


def _rows_of(ctx: TaskContext, file_name: str) -> list[dict[str, object]]:
    bronze = ctx.tables.read("c.bronze.events").collect()
    return [r.asDict() for r in bronze if Path(str(r["_source_file"])).name == file_name]


def _kept_whole(ctx: TaskContext, rows: list[dict[str, object]], data: bytes) -> bool:
    """One corrupt row pointing at a byte-exact copy of the file, logged and reported."""
    if len(rows) != 1 or not str(rows[0]["_corrupt"]).startswith("undecodable file"):
        return False
    copy = re.match(
        r"quarantined file copy: (.+) \(sha256 [0-9a-f]{64}, \d+ bytes\)$", str(rows[0]["_raw"])
    )
    counters = ctx.report.counters["source drop"]
    return (
        bool(copy)
        and Path(copy.group(1)).read_bytes() == data
        and counters["quarantined_files"] == 1
    )


@pytest.mark.parametrize("case", CASES, ids=[f"{c.kind}: {c.name}" for c in CASES])
def test_every_line_of_a_bad_file_is_accounted_for(
    spark: SparkSession, tmp_path: Path, case: Case, tally: Tally
) -> None:
    project = _project(tmp_path, case.fmt, case.options)
    landing = project.data_root / "landing"
    (landing / f"bad.{case.fmt}").write_bytes(case.data)
    encoding = str(case.options.get("encoding", "utf-8"))  # the source's files are in it
    (landing / f"good.{case.fmt}").write_bytes(GOOD[case.fmt].decode().encode(encoding))
    ctx = _context(spark, project, "r1")
    summary = ingest_source(ctx, "drop")  # the source does not fail

    assert len(_rows_of(ctx, f"good.{case.fmt}")) == 2  # the rest of the source proceeds
    rows = _rows_of(ctx, f"bad.{case.fmt}")
    kept = 0
    if case.quarantined:
        assert _kept_whole(ctx, rows, case.data), rows
        assert len(summary.quarantined) == 1 and any(
            "quarantined files" in n for n in ctx.report.warnings
        )
        kept = case.data_lines
    else:
        landed = {
            r["id"]: (r["qty"], r["price"], r["name"], r["_rescued_data"])
            for r in rows
            if r["_corrupt"] is None
        }
        corrupt = sorted(str(r["_raw"]) for r in rows if r["_corrupt"] is not None)
        assert (landed, corrupt) == (case.landed, sorted(case.corrupt))
        assert not summary.quarantined
        kept = len(landed) + len(corrupt)
    logged = ctx.tables.read("c.meta.processed_files").collect()
    assert sorted((Path(r["path"]).name, r["rows"]) for r in logged) == sorted(
        [(f"bad.{case.fmt}", len(rows)), (f"good.{case.fmt}", 2)]
    )
    assert ingest_file_source(_context(spark, project, "r2"), "drop").rows == 0  # once only
    tally.add(case.kind, case.data_lines, kept)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_file_that_vanishes_mid_run_is_not_recorded(
    spark: SparkSession, tmp_path: Path, tally: Tally, fmt: str
) -> None:
    """Deleted after listing: not logged, so the restored copy (same size and mtime) lands."""
    project = _project(tmp_path, fmt, {})
    path = project.data_root / "landing" / f"bad.{fmt}"
    path.write_bytes(ROWS.encode() if fmt == "csv" else JSON_ROWS.encode())
    stat = path.stat()
    saved = path.read_bytes()

    def delete_once_listed(what: str, done: int, total: int | None) -> None:
        if done == 0:
            path.unlink()

    ctx = _context(spark, project, "r1")
    summary = ingest_file_source(ctx, "drop", delete_once_listed)
    assert ctx.tables.row_count("c.meta.processed_files") == 0
    assert (summary.rows, summary.vanished) == (0, [str(path)])

    path.write_bytes(saved)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert ingest_file_source(_context(spark, project, "r2"), "drop").rows == 2
    tally.add("vanished file", 2, len(_rows_of(ctx, f"bad.{fmt}")))


def test_same_size_and_mtime_but_new_content_is_a_new_batch(
    spark: SparkSession, tmp_path: Path, tally: Tally
) -> None:
    """Files are identified by content: a rewrite that keeps size and mtime still lands."""
    project = _project(tmp_path, "csv", {})
    path = project.data_root / "landing" / "bad.csv"
    path.write_bytes(ROWS.encode())
    stat = path.stat()
    ctx = _context(spark, project, "r1")
    assert ingest_file_source(ctx, "drop").rows == 2
    path.write_bytes(ROWS.replace("1,10", "3,30").encode())
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    log_table = "c.meta.processed_files"
    ctx.tables.overwrite(log_table, ctx.tables.read(log_table).limit(0))  # listed as new again
    assert ingest_file_source(_context(spark, project, "r2"), "drop").rows == 2
    ids = sorted(str(r["id"]) for r in _rows_of(ctx, "bad.csv"))
    assert ids == ["1", "2", "2", "3"]
    tally.add("identity", 2, 2)


@pytest.mark.parametrize("allowed", [False, True], ids=["refused", "allowed"])
def test_symlinks_leaving_the_landing_root(
    spark: SparkSession, tmp_path: Path, tally: Tally, allowed: bool
) -> None:
    options = {"follow_symlinks_outside": "true"} if allowed else {}
    project = _project(tmp_path, "csv", options)
    landing = project.data_root / "landing"
    outside = tmp_path / "secret.csv"
    outside.write_bytes(ROWS.encode())
    (landing / "escape.csv").symlink_to(outside)
    (landing / "inside.csv").symlink_to(landing / "good.data")  # stays inside: ingested
    (landing / "good.data").write_bytes(GOOD["csv"])
    ctx = _context(spark, project, "r1")
    summary = ingest_source(ctx, "drop")
    assert len(_rows_of(ctx, "inside.csv")) == 2
    escaped = _rows_of(ctx, "escape.csv")
    if allowed:
        assert (len(escaped), summary.refused) == (2, [])
        tally.add("symlink escape", 2, len(escaped))
        return
    assert escaped == []
    assert summary.refused == [f"{landing / 'escape.csv'}: symlink to a file outside {landing}"]
    assert ctx.report.counters["source drop"]["refused_symlinks"] == 1
    assert any("refused symlinks" in note for note in ctx.report.warnings)
    tally.add("symlink escape", 2, 2)  # refused and reported, not ingested: as configured


def test_unknown_encoding_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    from lakehouse.core.errors import LakehouseError

    with pytest.raises(LakehouseError, match=r"encoding.*unknown encoding 'latin-99'"):
        _project(tmp_path, "csv", {"encoding": "latin-99"})
