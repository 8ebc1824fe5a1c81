"""Lineage derivation from the configuration (inputs, column lineage) and the recorder (no Spark)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lakehouse.config import load_project
from lakehouse.config.pipelines import GoldSpec
from lakehouse.config.project import Project
from lakehouse.governance.events import TaskOutcome
from lakehouse.governance.lineage.columns import (
    AGGREGATION,
    IDENTITY,
    TRANSFORMATION,
    ColumnMapping,
    InputRef,
    column_lineage,
    column_lineage_json,
    declared_inputs,
    query_column_lineage,
    referenced_columns,
    resolve_inputs,
)
from lakehouse.governance.lineage.recorder import LineageRecorder, RunInfo, TaskActivity
from lakehouse.io.results import WriteResult

pytestmark = pytest.mark.delta

REPO = Path(__file__).resolve().parents[2]
BC = "lakehouse.bronze.customers"
BO = "lakehouse.bronze.orders"
SC = "lakehouse.silver.customers"
SO = "lakehouse.silver.orders"
FEATURES = "lakehouse.gold.customer_features"
SALES = "lakehouse.gold.daily_sales"
PREDICTIONS = "lakehouse.gold.churn_predictions"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("lineage_conf")
    shutil.copy(REPO / "bundle.yml", root / "bundle.yml")
    shutil.copytree(REPO / "conf", root / "conf")
    return load_project(root, var_overrides={"data_root": str(root / "data")})


# ---------------------------------------------------------------- inputs


def test_declared_inputs_follow_the_configuration(project: Project) -> None:
    landing = project.resolve_path(str(project.variables["data_root"]))
    port = project.variables["sample_api_port"]
    assert declared_inputs(project, SC) == [InputRef("table", BC)]
    assert declared_inputs(project, SO + "_quarantine") == [InputRef("table", BO)]
    assert declared_inputs(project, FEATURES) == [InputRef("table", SC), InputRef("table", SO)]
    assert declared_inputs(project, SALES) == [InputRef("table", SO), InputRef("table", SC)]
    assert declared_inputs(project, PREDICTIONS) == [InputRef("table", FEATURES)]
    assert declared_inputs(project, BO) == [InputRef("files", f"{landing}/landing/orders")]
    assert declared_inputs(project, "lakehouse.bronze.events") == [
        InputRef("http", f"http://127.0.0.1:{port}/data")
    ]
    assert declared_inputs(project, "lakehouse.meta.dq_results") is None


def test_resolved_inputs_carry_the_versions_read_and_null_for_unread(project: Project) -> None:
    reads = {SC: 4, BO: 2, "lakehouse.meta.processed_files": 9}
    assert resolve_inputs(project, FEATURES, reads) == [
        InputRef("table", SC, 4),
        InputRef("table", SO, None),
    ]
    # a table the configuration does not derive: the tables the task read (not bookkeeping)
    assert resolve_inputs(project, "lakehouse.meta.dq_results", reads) == [
        InputRef("table", SC, 4),
        InputRef("table", BO, 2),
    ]


# ---------------------------------------------------------------- column lineage


def test_silver_columns_map_to_same_named_bronze_columns_and_scd2_to_sequence(
    project: Project,
) -> None:
    columns = column_lineage(project, SC)
    data = ["customer_id", "name", "email", "region", "plan", "signup_date"]
    data += ["support_tickets", "churned", "updated_at"]
    expected = {c: ColumnMapping((f"{BC}.{c}",), TRANSFORMATION) for c in data}
    expected |= {
        c: ColumnMapping((f"{BC}.updated_at",), TRANSFORMATION)
        for c in ("valid_from", "valid_to", "is_current")
    }
    assert columns == expected


def test_silver_rename_and_identity(project: Project) -> None:
    spec = project.silver[SO].model_copy(
        update={"rename": {"status": "product"}, "trim": False, "standardize": {}}
    )
    renamed = dataclasses.replace(project, silver={**project.silver, SO: spec})
    columns = column_lineage(renamed, SO)
    assert columns["status"] == ColumnMapping((f"{BO}.product",), IDENTITY)  # string -> string
    assert columns["order_id"] == ColumnMapping((f"{BO}.order_id",), IDENTITY)
    assert columns["quantity"] == ColumnMapping((f"{BO}.quantity",), TRANSFORMATION)  # cast


def test_quarantine_row_comes_from_the_conformed_bronze_columns(project: Project) -> None:
    columns = column_lineage(project, SO + "_quarantine")
    data = ["order_id", "customer_id", "order_ts", "product", "quantity", "amount", "status"]
    assert columns == {
        "_row": ColumnMapping(tuple(f"{BO}.{c}" for c in [*data, "updated_at"]), TRANSFORMATION),
        "_source_file": ColumnMapping((f"{BO}._source_file",), IDENTITY),
    }


def test_gold_query_columns_come_from_sqlglot_lineage(project: Project) -> None:
    columns = column_lineage(project, SALES)
    assert {name: list(m.sources) for name, m in columns.items()} == {
        "order_month": [f"{SO}.order_ts"],
        "order_date": [f"{SO}.order_ts"],
        "region": [f"{SC}.region"],
        "product": [f"{SO}.product"],
        "units": [f"{SO}.quantity"],
        "revenue": [f"{SO}.amount"],
        "refunded_orders": [f"{SO}.status"],
        "customers": [f"{SO}.customer_id"],
    }  # orders is COUNT(*): no column
    assert columns["revenue"].subtype == AGGREGATION
    assert columns["order_date"].subtype == TRANSFORMATION


def test_features_over_a_python_transform_point_at_its_output(project: Project) -> None:
    assert column_lineage(project, FEATURES) == {
        "avg_order_value": ColumnMapping(
            (f"{FEATURES}.orders_count", f"{FEATURES}.total_spend"), TRANSFORMATION
        )
    }


def test_features_over_a_query_are_traced_to_the_inputs(project: Project) -> None:
    gold = GoldSpec(
        inputs={"o": SO},
        query="SELECT o.customer_id, SUM(o.amount) AS spend, COUNT(*) AS n FROM o GROUP BY 1",
        features={"avg_spend": "CASE WHEN n > 0 THEN spend / n ELSE 0 END"},
    )
    traced = dataclasses.replace(project, gold={**project.gold, SALES: gold})
    columns = column_lineage(traced, SALES)
    # n is COUNT(*): no column; spend is SUM(amount); only catalog columns and features are kept
    assert columns == {"avg_spend": ColumnMapping((f"{SO}.amount",), TRANSFORMATION)}


def test_query_lineage_of_unparseable_sql_is_empty() -> None:
    assert query_column_lineage("SELEC nonsense FROM (", {"o": SO}, {"o": ["a"]}, ["a"]) == {}
    assert referenced_columns("CASE WHEN (") is None
    assert referenced_columns("coalesce(a, b + c) * a") == ["a", "b", "c"]


def test_predictions_keys_and_model_features(project: Project) -> None:
    columns = column_lineage(project, PREDICTIONS)
    assert columns["customer_id"] == ColumnMapping((f"{FEATURES}.customer_id",), IDENTITY)
    assert columns["feature_ts"] == ColumnMapping((f"{FEATURES}.feature_ts",), IDENTITY)
    features = tuple(f"{FEATURES}.{f}" for f in project.models["churn"].features)
    assert columns["prediction"] == ColumnMapping(features, TRANSFORMATION)
    assert set(columns) == {"customer_id", "feature_ts", "prediction", "probability"}
    assert column_lineage(project, BO) == {}  # files -> Bronze: table-level only


def test_stored_form_is_json_of_sources() -> None:
    stored = column_lineage_json({"a": ColumnMapping(("c.s.t.x", "c.s.t.y"))})
    assert stored is not None and json.loads(stored) == {"a": ["c.s.t.x", "c.s.t.y"]}
    assert column_lineage_json({}) is None


# ---------------------------------------------------------------- the recorder


RUN = RunInfo(job="demo", run_id="r1", principal="someone", engine="sail")
DONE = TaskOutcome()


class FakeTables:
    """Captures the lineage append (the recorder's only use of the adapter)."""

    def __init__(self) -> None:
        self.appended: list[tuple[str, list[tuple[Any, ...]], bool]] = []
        self.spark = self

    def createDataFrame(self, rows: list[tuple[Any, ...]], schema: Any) -> Any:  # noqa: N802
        return rows

    def schema(self, name: str) -> None:
        return None

    def append_system(self, name: str, df: Any) -> None:
        self.appended.append((name, df, True))


class FakeEmitter:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, list[str]]] = []

    def start(self, activity: TaskActivity) -> None:
        self.events.append(("START", activity.task, []))

    def finish(self, activity: TaskActivity, error: BaseException | None) -> None:
        state = "FAIL" if error else "COMPLETE"
        self.events.append((state, activity.task, sorted(activity.writes)))


def _write(table: str, op: str, version: int, previous: int | None) -> WriteResult:
    return WriteResult(table, op, 3, version, previous, 0.1)


def test_recorder_buffers_edges_per_task_and_appends_once(project: Project) -> None:
    tables, emitter = FakeTables(), FakeEmitter()
    recorder = LineageRecorder(project, RUN, emitter=emitter)
    recorder.start_task("build_gold")
    recorder.table_read(SC, 3)
    recorder.table_read(SO, 5)
    recorder.table_written(_write(FEATURES, "overwrite", 7, 6))
    recorder.table_written(_write("lakehouse.meta.dq_results", "merge", 2, 1))  # bookkeeping
    recorder.table_written(_write(SALES, "overwrite", 4, 4))  # committed nothing: no rows
    recorder.flush(tables, DONE)  # type: ignore[arg-type]
    recorder.flush(tables, DONE)  # type: ignore[arg-type]  # nothing left: no second append

    [(name, rows, system)] = tables.appended
    assert (name, system) == ("lakehouse.meta.lineage", True)
    edges = {(r[3], r[5], r[6], r[7], r[8], r[9], r[10]) for r in rows}
    assert edges == {
        ("build_gold", "overwrite", FEATURES, 7, "table", SC, 3),
        ("build_gold", "overwrite", FEATURES, 7, "table", SO, 5),
    }
    assert {(*r[1:3], r[4]) for r in rows} == {("r1", "demo", "someone")}
    assert json.loads(rows[0][11]) == {
        "avg_order_value": [f"{FEATURES}.orders_count", f"{FEATURES}.total_spend"]
    }
    assert emitter.events == [
        ("START", "build_gold", []),
        ("COMPLETE", "build_gold", [FEATURES, SALES]),  # outputs include the no-op write
    ]


def test_recorder_reports_a_failed_task_and_skips_idle_tasks(project: Project) -> None:
    tables, emitter = FakeTables(), FakeEmitter()
    recorder = LineageRecorder(project, RUN, emitter=emitter)
    recorder.start_task("register")
    recorder.flush(tables, DONE)  # type: ignore[arg-type]  # no table touched: no events
    recorder.start_task("refine_silver")
    recorder.table_read(BC, 1)
    recorder.table_written(_write(SC, "merge", 2, 1))
    try:
        raise RuntimeError("boom")
    except RuntimeError as boom:
        recorder.flush(tables, TaskOutcome(boom))  # type: ignore[arg-type]  # a failed scope
    assert [e[:2] for e in emitter.events] == [
        ("START", "refine_silver"),
        ("FAIL", "refine_silver"),
    ]
    [(_, rows, _)] = tables.appended
    assert [(r[6], r[7], r[9], r[10]) for r in rows] == [(SC, 2, BC, 1)]


def test_a_bronze_write_records_its_landing_directory(project: Project) -> None:
    tables = FakeTables()
    recorder = LineageRecorder(project, RUN)
    recorder.start_task("ingest")
    recorder.table_written(_write(BO, "append", 1, 0))
    recorder.table_written(_write("lakehouse.meta.processed_files", "merge", 1, 0))
    recorder.flush(tables, DONE)  # type: ignore[arg-type]
    [(_, rows, _)] = tables.appended
    landing = project.resolve_path(str(project.variables["data_root"])) + "/landing/orders"
    assert [(r[6], r[8], r[9], r[10], r[11]) for r in rows] == [(BO, "files", landing, None, None)]


def test_a_write_nothing_explains_records_no_input(project: Project) -> None:
    sourceless = dataclasses.replace(project, sources={})
    tables = FakeTables()
    recorder = LineageRecorder(sourceless, RUN)
    recorder.start_task("custom")
    recorder.table_read("lakehouse.meta.processed_files", 4)  # bookkeeping is no input
    recorder.table_written(_write(BO, "append", 1, 0))
    recorder.flush(tables, DONE)  # type: ignore[arg-type]
    [(_, rows, _)] = tables.appended
    assert [(r[6], r[8], r[9], r[10]) for r in rows] == [(BO, "none", None, None)]


def test_read_only_tasks_report_at_their_end_and_bookkeeping_reads_not_at_all(
    project: Project,
) -> None:
    tables, emitter = FakeTables(), FakeEmitter()
    recorder = LineageRecorder(project, RUN, emitter=emitter)
    recorder.start_task("lineage")
    recorder.table_read("lakehouse.meta.lineage", 7)
    recorder.flush(tables, DONE)  # type: ignore[arg-type]
    recorder.start_task("train_model")
    recorder.table_read(FEATURES, 2)
    assert emitter.events == []
    recorder.flush(tables, DONE)  # type: ignore[arg-type]
    assert emitter.events == [("START", "train_model", []), ("COMPLETE", "train_model", [])]
    assert tables.appended == []


def test_a_denial_mid_task_ends_as_a_failure(project: Project) -> None:
    tables, emitter = FakeTables(), FakeEmitter()
    recorder = LineageRecorder(project, RUN, emitter=emitter)
    recorder.start_task("refine_silver")
    recorder.table_written(_write(SC, "merge", 2, 1))
    recorder.flush(tables, DONE)  # type: ignore[arg-type]  # a flush mid-task
    try:
        raise PermissionError("denied")
    except PermissionError as denied:
        recorder.flush(tables, TaskOutcome(denied))  # type: ignore[arg-type]  # the scope ends
    assert [e[0] for e in emitter.events] == ["START", "COMPLETE", "FAIL"]
    assert len(tables.appended) == 1
