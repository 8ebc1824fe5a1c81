"""Real CSV exports into Bronze on real Delta tables: options, and mostly-bad files never a
silent success (the bad-rows policy)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from pyspark.sql import SparkSession
from rich.console import Console

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import Project, load_project
from lakehouse.core.errors import TaskError
from lakehouse.io.delta import DeltaStore
from lakehouse.pipelines.bronze.ingest import ingest_source
from lakehouse.summary import render_report
from tests.support import session_engine

# also in the distributed invocation (make test-cluster: Sail local-cluster, 2 workers)
pytestmark = pytest.mark.distributed

BUNDLE = """
bundle: {name: t}
include: [conf/*.yml]
variables: {data_root: {default: ./data}}
targets: {local: {default: true}}
"""
JUNK_FIRST_LINE = "Exported from CRM on 2026-12-01\nid,name,qty\n1,Ann,3\n2,Bo,4\n3,Cy,5\n"
# the junk line has as many fields as the data: the values all land aside, none corrupt
JUNK_SAME_WIDTH = "report,crm,2026\nid,name,qty\n1,Ann,3\n2,Bo,4\n3,Cy,5\n"
LANDED = [("1", "Ann", 3), ("2", "Bo", 4), ("3", "Cy", 5)]


def _project(tmp_path: Path, csv: dict[str, object], **source: object) -> Project:
    root = tmp_path / "proj"
    (root / "conf").mkdir(parents=True, exist_ok=True)
    (root / "bundle.yml").write_text(BUNDLE)
    columns = [
        {"name": "id", "type": "string"},
        {"name": "name", "type": "string"},
        {"name": "qty", "type": "int"},
    ]
    conf = {
        "catalog": {
            "name": "c",
            "storage_root": "${var.data_root}/tables",
            "schemas": {"bronze": {"tables": {"people": {"layer": "bronze", "columns": columns}}}},
        },
        "sources": {
            "drop": {
                "kind": "files",
                "path": "${var.data_root}/landing",
                "glob": "*.csv",
                "format": "csv",
                "csv": csv,
                "target": "c.bronze.people",
                **source,
            }
        },
    }
    (root / "conf" / "c.yml").write_text(yaml.safe_dump(conf))
    (root / "data" / "landing").mkdir(parents=True, exist_ok=True)
    return load_project(root)


def _context(spark: SparkSession, project: Project, run_id: str = "r1") -> TaskContext:
    tables = DeltaStore(spark, project, session_engine(spark))
    tables.register_all()
    report = RunReport(job="ingest", run_id=run_id, target="local", engine=session_engine(spark))
    return TaskContext(spark=spark, project=project, tables=tables, report=report, task_key="t")


def _land(project: Project, name: str, text: str) -> Path:
    path = project.data_root / "landing" / name
    path.write_bytes(text.encode())
    return path


def _people(ctx: TaskContext) -> list[tuple[object, ...]]:
    rows = ctx.tables.read("c.bronze.people").orderBy("id").collect()
    return [(r["id"], r["name"], r["qty"]) for r in rows if r["_corrupt"] is None]


def _summary(report: RunReport) -> str:
    out = io.StringIO()
    render_report(report, Console(file=out, width=400, color_system=None))
    return out.getvalue()


@pytest.mark.delta
def test_junk_first_line_with_skip_rows_lands_exactly(spark: SparkSession, tmp_path: Path) -> None:
    project = _project(tmp_path, {"skip_rows": 1})
    _land(project, "export.csv", JUNK_FIRST_LINE)
    ctx = _context(spark, project)
    summary = ingest_source(ctx, "drop")
    assert (summary.rows, summary.corrupt_rows, summary.rescued_rows) == (3, 0, 0)
    assert _people(ctx) == LANDED
    assert ctx.report.warnings == []
    assert "run r1 succeeded in" in _summary(ctx.report)


def test_junk_first_line_without_skip_rows_warns(spark: SparkSession, tmp_path: Path) -> None:
    """Mostly corrupt (a one-field junk line) and mostly rescued (a junk line as wide as the
    data): each lands, and the run succeeds with a warning naming file, fraction and fix."""
    project = _project(tmp_path, {})
    narrow = _land(project, "narrow.csv", JUNK_FIRST_LINE)
    wide = _land(project, "wide.csv", JUNK_SAME_WIDTH)
    ctx = _context(spark, project)
    summary = ingest_source(ctx, "drop")
    assert (summary.rows, summary.corrupt_rows, summary.rescued_rows) == (8, 4, 4)
    fix = "first line is not the header? set csv.skip_rows"
    assert ctx.report.warnings == [
        f"drop: {narrow}: 100% of 4 rows bad (4 corrupt, e.g. malformed CSV: expected 1 "
        "fields, got 3), over bad_rows.max_fraction 0.5; "
        f"the header ('Exported from CRM on 2026-12-01') matches none of the declared columns "
        f"(id, name, qty); {fix}; else check csv.delimiter (',') and csv.quote",
        f"drop: {wide}: 100% of 4 rows bad (4 rescued with every declared column NULL (values "
        "in _rescued_data)), over bad_rows.max_fraction 0.5; the header ('report', 'crm', "
        f"'2026') matches none of the declared columns (id, name, qty); {fix}, or "
        "csv.header: false for a file without one",
    ]
    assert ctx.report.counters["source drop"]["flagged_files"] == 2
    assert "run r1 succeeded with 2 warnings in" in _summary(ctx.report)


@pytest.mark.delta
def test_fail_action_keeps_the_file_aside_and_fails_the_task(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Nothing of the bad file lands, a good file in the same commit does; the bad file is
    copied with its reason and not logged, so it lands once the config is fixed."""
    policy = {"bad_rows": {"max_fraction": 0.2, "action": "fail"}}
    project = _project(tmp_path, {}, **policy)
    bad = _land(project, "bad.csv", JUNK_FIRST_LINE)
    _land(project, "good.csv", "id,name,qty\n9,Di,1\n")
    ctx = _context(spark, project)
    with pytest.raises(TaskError) as failed:
        ingest_source(ctx, "drop")
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith(
        "source drop: 1 file(s) over the bad-rows threshold (bad_rows.action: fail), not "
        f"landed: {bad}: 100% of 4 rows bad"
    )
    assert _people(ctx) == [("9", "Di", 1)]
    assert ctx.tables.row_count("c.bronze.people") == 1
    kept = sorted((project.data_root / "quarantine" / "files" / "drop").iterdir())
    assert [p.name.split("-", 1)[1] for p in kept] == ["bad.csv", "bad.csv.reason.txt"]
    assert kept[0].read_bytes() == JUNK_FIRST_LINE.encode()
    assert kept[1].read_text().startswith(f"{bad}: 100% of 4 rows bad (4 corrupt")
    assert f"(kept as {kept[0]})" in message
    logged = ctx.tables.read("c.meta.processed_files").collect()
    assert [Path(r["path"]).name for r in logged] == ["good.csv"]

    fixed = _project(tmp_path, {"skip_rows": 1}, **policy)
    again = _context(spark, fixed, "r2")
    summary = ingest_source(again, "drop")
    assert (summary.units, summary.rows, summary.skipped) == (1, 3, 1)
    assert _people(again) == [*LANDED, ("9", "Di", 1)]


def test_headerless_file_lands_in_catalog_order(spark: SparkSession, tmp_path: Path) -> None:
    project = _project(tmp_path, {"header": False})
    _land(project, "a.csv", "1,Ann,3\n2,Bo,4\n3,Cy,5\n")
    ctx = _context(spark, project)
    assert ingest_source(ctx, "drop").rows == 3
    assert _people(ctx) == LANDED
    assert ctx.report.warnings == []


def test_quote_escape_comment_and_multiline_fields(spark: SparkSession, tmp_path: Path) -> None:
    options: dict[str, object] = {"delimiter": ";", "quote": "'", "escape": "\\", "comment": "#"}
    project = _project(tmp_path, options)
    text = (
        "# generated\nid;name;qty\n1;'Ann; \\'the\\' first';3\n# note\n"
        "2;'Bo\r\nsecond line';4\r\n3;'Cy';5\n"
    )
    _land(project, "a.csv", text)
    ctx = _context(spark, project)
    summary = ingest_source(ctx, "drop")
    assert (summary.rows, summary.corrupt_rows, summary.rescued_rows) == (3, 0, 0)
    assert _people(ctx) == [
        ("1", "Ann; 'the' first", 3),
        ("2", "Bo\r\nsecond line", 4),
        ("3", "Cy", 5),
    ]


def test_ragged_file_over_threshold_keeps_every_line(spark: SparkSession, tmp_path: Path) -> None:
    """A ragged file: each bad record is kept with its text, and the file is flagged."""
    project = _project(tmp_path, {})
    path = _land(project, "ragged.csv", 'id,name,qty\n1,Ann,3\n2,Bo\n3\n4,"Di,\n5,Ed,6,7\n')
    ctx = _context(spark, project)
    summary = ingest_source(ctx, "drop")
    assert (summary.rows, summary.corrupt_rows) == (5, 4)
    corrupt = ctx.tables.read("c.bronze.people").where("_corrupt IS NOT NULL").collect()
    assert sorted((r["_raw"], r["_corrupt"]) for r in corrupt) == [
        ("2,Bo", "malformed CSV: expected 3 fields, got 2"),
        ("3", "malformed CSV: expected 3 fields, got 1"),
        ('4,"Di,', "malformed CSV: broken quoting"),
        ("5,Ed,6,7", "malformed CSV: expected 3 fields, got 4"),
    ]
    assert len(ctx.report.warnings) == 1
    assert ctx.report.warnings[0].startswith(f"drop: {path}: 80% of 5 rows bad (4 corrupt, e.g. ")


def test_a_header_naming_no_declared_column_is_reported(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Even with no rows to count (here: only a header line)."""
    project = _project(tmp_path, {})
    path = _land(project, "a.csv", "customer,amount,day\n")
    ctx = _context(spark, project)
    assert ingest_source(ctx, "drop").rows == 0
    assert ctx.report.warnings == [
        f"drop: {path}: the header ('customer', 'amount', 'day') matches none of the declared "
        "columns (id, name, qty)"
    ]


def test_inference_reads_csv_with_the_same_options(spark: SparkSession, tmp_path: Path) -> None:
    """A table without declared columns: the sample is parsed like the ingest (skip_rows,
    delimiter, a multi-line quoted field), so the junk line is no column name."""
    from tests.pipelines.bronze.test_infer import context, data_schema, inferred_project

    extra = "    csv: {skip_rows: 1, delimiter: ';'}"
    project = inferred_project(tmp_path, extra=extra)
    text = 'Exported 2026-12-01\nid;note;qty\n1;"two\nlines";3\n2;plain;4\n'
    (project.data_root / "landing" / "a.csv").write_text(text)
    ctx = context(spark, project)
    summary = ingest_source(ctx, "drop")
    assert (summary.rows, summary.corrupt_rows, summary.rescued_rows) == (2, 0, 0)
    assert data_schema(ctx) == [("id", "bigint"), ("note", "string"), ("qty", "bigint")]
    rows = ctx.tables.read("c.bronze.events").orderBy("id").collect()
    assert [(r["id"], r["note"], r["qty"]) for r in rows] == [(1, "two\nlines", 3), (2, "plain", 4)]
    assert ctx.report.warnings == []
