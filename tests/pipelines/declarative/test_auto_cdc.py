"""AUTO CDC flows: Databricks' ``create_auto_cdc_flow`` signature read into
:class:`AutoCdc`, and applied by ``lakehouse.pipelines.declarative.cdc`` (helper sdp-cdc)."""

from __future__ import annotations

import pytest

from lakehouse.config.project import Project
from lakehouse.pipelines.declarative.handlers import DiscoveryReads  # noqa: F401 - import check
from lakehouse.pipelines.declarative.loader import load_graph
from lakehouse.pipelines.declarative.model import AutoCdc
from lakehouse.pipelines.declarative.runner import run_definition
from lakehouse.runtime.run import RunContext

from .conftest import definition, write

pytestmark = pytest.mark.delta

CDC = """
from pyspark import pipelines as dp
from pyspark.sql import functions as F


@dp.materialized_view
def customer_changes():
    return spark.createDataFrame(
        [(1, "a", 1, "INSERT"), (2, "b", 2, "INSERT"), (1, "a2", 3, "UPDATE"), (2, None, 4, "DELETE")],
        "id long, name string, seq long, op string",
    )


dp.create_streaming_table("customers")
dp.create_auto_cdc_flow(
    target="customers",
    source="customer_changes",
    keys=["id"],
    sequence_by=F.col("seq"),
    apply_as_deletes=F.expr("op = 'DELETE'"),
    except_column_list=["op", "seq"],
    stored_as_scd_type={scd},{track}
    ignore_null_updates=True,
)
"""


def test_databricks_signature_becomes_an_auto_cdc_spec(run: RunContext, project: Project) -> None:
    write(project.root / "p" / "cdc.py", scd2())
    spec = definition(project, "cdc", ["p/cdc.py"])
    graph, _ = load_graph(spec, run.spark, lambda name, stream: run.spark.range(0))
    flow = graph.flows["lh.sales.customers"]
    assert flow.target == "lh.sales.customers"
    assert flow.auto_cdc == AutoCdc(
        target="customers",
        source="customer_changes",
        keys=("id",),
        sequence_by="seq",
        stored_as_scd_type=2,
        apply_as_deletes="op = 'DELETE'",
        except_column_list=("op", "seq"),
        track_history_column_list=("name",),
        ignore_null_updates=True,
    )
    assert graph.upstream(flow) == {"lh.sales.customer_changes"}


def scd2() -> str:
    return CDC.replace("{scd}", "2").replace("{track}", '\n    track_history_column_list=["name"],')


def test_auto_cdc_flow_applies_changes(run: RunContext, project: Project) -> None:
    write(project.root / "p" / "cdc.py", CDC.replace("{scd}", "1").replace("{track}", ""))
    update = run_definition(run, definition(project, "cdc", ["p/cdc.py"]))
    assert update.error is None, update.error
    rows = run.store.read("lh.sales.customers").select("id", "name").collect()
    assert [tuple(r) for r in rows] == [(1, "a2")]
    assert update.datasets["lh.sales.customers"].rows_written == 1  # id 2 came and went


def test_auto_cdc_scd2_history(run: RunContext, project: Project) -> None:
    write(project.root / "p" / "cdc.py", scd2())
    spec = definition(project, "cdc2", ["p/cdc.py"])
    update = run_definition(run, spec)
    assert update.error is None, update.error
    table = run.store.read("lh.sales.customers")
    rows = table.select("id", "name", "__START_AT", "__END_AT").orderBy("id", "__START_AT")
    assert [tuple(r) for r in rows.collect()] == [
        (1, "a", 1, 3),
        (1, "a2", 3, None),
        (2, "b", 2, 4),
    ]
    again = run_definition(run, spec)  # the source is a materialized view: recomputed, same rows
    assert again.error is None, again.error
    assert run.store.read("lh.sales.customers").count() == 3
    refreshed = run_definition(run, spec, full_refresh=True)
    assert refreshed.error is None, refreshed.error
    assert run.store.read("lh.sales.customers").count() == 3
