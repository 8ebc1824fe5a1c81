"""The demo pipeline under governance: meta.lineage rows, the upstream graph, OpenLineage events."""

from __future__ import annotations

from pathlib import Path

import pytest
from openlineage.client.event_v2 import RunState
from rich.console import Console

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config.system_tables import SystemTable, system_table_name
from lakehouse.governance.lineage.graph import lineage_graph, show_lineage
from lakehouse.governance.lineage.openlineage import (
    dataset_naming,
    events_file,
    read_events,
    run_uuid,
)
from lakehouse.pipelines.bronze.ingest import ingest_source
from lakehouse.pipelines.silver.refine import refine_table
from tests.governance.conftest import RUN_ID, DemoRun

pytestmark = pytest.mark.delta

BC = "lakehouse.bronze.customers"
BO = "lakehouse.bronze.orders"
SC = "lakehouse.silver.customers"
SO = "lakehouse.silver.orders"
FEATURES = "lakehouse.gold.customer_features"
SALES = "lakehouse.gold.daily_sales"


def _edges(run: DemoRun) -> set[tuple[object, ...]]:
    rows = run.tables.read(system_table_name("lakehouse", SystemTable.LINEAGE)).collect()
    return {
        (
            r["task"],
            r["operation"],
            r["output_table"],
            r["output_version"],
            r["input_kind"],
            r["input_name"],
            r["input_version"],
        )
        for r in rows
    }


def test_every_write_of_the_demo_tasks_records_its_inputs_and_versions(demo_run: DemoRun) -> None:
    landing = demo_run.root / "data" / "landing"
    assert _edges(demo_run) == {
        ("ingest_bronze", "append", BC, 1, "files", str(landing / "customers"), None),
        ("ingest_bronze", "append", BO, 1, "files", str(landing / "orders"), None),
        ("refine_silver", "merge", SC, 1, "table", BC, 1),
        ("refine_silver", "merge", SC + "_quarantine", 1, "table", BC, 1),
        ("refine_silver", "merge", SO, 1, "table", BO, 1),
        ("refine_silver", "merge", SO + "_quarantine", 1, "table", BO, 1),
        ("build_gold", "overwrite", FEATURES, 1, "table", SC, 1),
        ("build_gold", "overwrite", FEATURES, 1, "table", SO, 1),
        ("build_gold", "overwrite", SALES, 1, "table", SC, 1),
        ("build_gold", "overwrite", SALES, 1, "table", SO, 1),
    }
    row = (
        demo_run.tables.read(system_table_name("lakehouse", SystemTable.LINEAGE))
        .where(f"output_table = '{SALES}'")
        .first()
    )
    assert row is not None
    assert (row["run_id"], row["job"], row["principal"]) == (RUN_ID, "demo", "lakehouse-job")
    assert '"revenue": ["lakehouse.silver.orders.amount"]' in row["column_lineage"]


def test_upstream_of_a_feature_table_reaches_the_bronze_sources(
    demo_run: DemoRun, tmp_path: Path
) -> None:
    graph = lineage_graph(demo_run.tables, FEATURES, "upstream")
    landing = demo_run.root / "data" / "landing"
    assert {(e.source, e.target, e.input_version) for e in graph.edges} == {
        (SC, FEATURES, 1),
        (SO, FEATURES, 1),
        (BC, SC, 1),
        (BO, SO, 1),
        (f"files:{landing / 'customers'}", BC, None),
        (f"files:{landing / 'orders'}", BO, None),
    }
    assert graph.nodes[BC].layer == "bronze" and graph.nodes[BC].version == 1

    console = Console(record=True, width=250)
    picture = show_lineage(demo_run.tables, FEATURES, "upstream", console, tmp_path / "up.svg")
    text = console.export_text()
    assert f"{FEATURES}  v1" in text
    assert f"← {SC}  read v1" in text
    assert f"← orders_drop files {landing / 'orders'}" in text
    assert "avg_order_value" in text  # the column lineage of the feature table
    assert picture == tmp_path / "up.svg"
    svg = picture.read_text()
    assert svg.startswith("<?xml") and "bronze.customers" in svg and "cluster_silver" in svg


def test_downstream_of_a_bronze_table(demo_run: DemoRun) -> None:
    graph = lineage_graph(demo_run.tables, BO, "downstream")
    assert {(e.source, e.target) for e in graph.edges} == {
        (BO, SO),
        (BO, SO + "_quarantine"),
        (SO, FEATURES),
        (SO, SALES),
    }


def test_openlineage_events_parse_and_carry_merge_inputs_and_outputs(demo_run: DemoRun) -> None:
    events = read_events(events_file(demo_run.project, RUN_ID))  # the client's own models
    by_task = {(e.job.name, e.eventType): e for e in events}
    assert set(by_task) == {
        (f"demo.{task}", state)
        for task in ("ingest_bronze", "refine_silver", "build_gold")
        for state in (RunState.START, RunState.COMPLETE)
    }
    refine = by_task[("demo.refine_silver", RunState.COMPLETE)]
    assert refine.run.runId == run_uuid(RUN_ID, "demo", "refine_silver")

    def named(datasets: list[object] | None) -> dict[str, object]:
        return {
            ds.facets["symlinks"].identifiers[0].name: ds  # type: ignore[attr-defined]
            for ds in datasets or []
        }

    inputs, outputs = named(refine.inputs), named(refine.outputs)  # type: ignore[arg-type]
    assert set(inputs) == {BC, BO}
    assert set(outputs) == {SC, SO, SC + "_quarantine", SO + "_quarantine"}
    silver = outputs[SO]
    facets = silver.facets  # type: ignore[attr-defined]
    assert facets["version"].datasetVersion == "1"
    assert inputs[BO].facets["version"].datasetVersion == "1"  # type: ignore[attr-defined]
    bronze_name = dataset_naming(demo_run.project.table(BO).location)[1]
    [amount] = facets["columnLineage"].fields["amount"].inputFields
    assert (amount.name, amount.field) == (bronze_name, "amount")
    ingest = by_task[("demo.ingest_bronze", RunState.COMPLETE)]
    assert {ds.namespace for ds in ingest.inputs or []} == {"file"}
    assert {ds.name for ds in ingest.inputs or []} == {
        str(demo_run.root / "data" / "landing" / "customers"),
        str(demo_run.root / "data" / "landing" / "orders"),
    }


def test_a_replay_that_commits_nothing_adds_no_edges(demo_run: DemoRun) -> None:
    before = _edges(demo_run)
    governance = demo_run.tables.governance
    assert governance is not None
    report = RunReport(job="demo", run_id=RUN_ID, target="local", engine=demo_run.tables.engine)
    ctx = TaskContext(
        demo_run.tables.spark, demo_run.project, demo_run.tables, report, task_key="again"
    )
    with governance.task_scope("again"):
        ingest_source(ctx, "orders_drop")
        refine_table(ctx, SO)
    assert _edges(demo_run) == before
    events = read_events(events_file(demo_run.project, RUN_ID))
    [again] = [e for e in events if e.job.name == "demo.again" and e.eventType == RunState.COMPLETE]
    assert again.outputs == []  # no new Bronze batch: Silver read nothing and wrote nothing
