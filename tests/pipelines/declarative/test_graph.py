"""Loading pipeline code into the graph and validating it (``dry-run``), refresh options,
failing expectations, ``import dlt`` and SQL definitions."""

from __future__ import annotations

import json

import pyspark.pipelines as dp
import pytest

from lakehouse.config.project import Project
from lakehouse.pipelines.declarative.model import (
    Expectation,
    SourceLocation,
    SqlDataset,
    SqlFlow,
    SqlQuery,
    StreamRead,
)
from lakehouse.pipelines.declarative.runner import run_definition
from lakehouse.runtime.run import RunContext

from .conftest import definition, write

pytestmark = pytest.mark.delta


def test_dry_run_names_a_missing_dependency_with_file_and_line(
    run: RunContext, project: Project
) -> None:
    path = write(
        project.root / "p" / "missing.py",
        """
        from pyspark import pipelines as dp

        @dp.materialized_view
        def totals():
            return spark.read.table("no_such_table").groupBy("k").count()
        """,
    )
    update = run_definition(run, definition(project, "m", ["p/missing.py"]), dry_run=True)
    assert update.problems == [
        "lh.sales.totals reads no_such_table, which is neither a dataset of the "
        f"pipeline nor an existing table ({path}:3)"
    ]
    assert not update.succeeded
    assert "lh.sales.totals" not in project.tables  # nothing ran


def test_dry_run_finds_a_cycle(run: RunContext, project: Project) -> None:
    path = write(
        project.root / "p" / "cycle.py",
        """
        from pyspark import pipelines as dp

        @dp.materialized_view
        def a():
            return spark.read.table("b")

        @dp.materialized_view
        def b():
            return spark.table("a")
        """,
    )
    update = run_definition(run, definition(project, "c", ["p/cycle.py"]), dry_run=True)
    assert update.problems == [f"cycle: lh.sales.a -> lh.sales.b -> lh.sales.a ({path}:3)"]


def test_duplicates_and_undefined_targets_are_problems(run: RunContext, project: Project) -> None:
    path = write(
        project.root / "p" / "dupes.py",
        """
        from pyspark import pipelines as dp

        @dp.materialized_view
        def a():
            return spark.range(3)

        @dp.materialized_view(name="a")
        def again():
            return spark.range(2)

        @dp.append_flow(target="nowhere")
        def lost():
            return spark.range(1)
        """,
    )
    update = run_definition(run, definition(project, "d", ["p/dupes.py"]), dry_run=True)
    assert update.problems == [
        f"dataset lh.sales.a is defined twice ({path}:7 and {path}:3)",
        f"flow lh.sales.lost writes lh.sales.nowhere, which the pipeline does not define ({path}:11)",
    ]


CHAIN = """
from pyspark import pipelines as dp
import dlt


@dlt.table
@dlt.expect_or_fail("small", "id < {limit}")
def numbers():
    return spark.range(int(spark.conf.get("n")))


@dp.materialized_view
def doubled():
    return spark.sql("SELECT id * 2 AS twice FROM numbers")


@dp.materialized_view
def counted():
    return dlt.read("doubled").groupBy().count()
"""


def test_full_refresh_and_refresh_and_a_failing_expectation(
    run: RunContext, project: Project
) -> None:
    write(project.root / "p" / "chain.py", CHAIN.replace("{limit}", "5"))
    spec = definition(project, "chain", ["p/chain.py"], {"n": "3"})
    first = run_definition(run, spec)
    assert first.error is None
    assert [r.rows_written for r in first.datasets.values()] == [3, 3, 1]
    assert "expect" not in dir(dp) and "dlt" not in __import__("sys").modules  # restored

    only = run_definition(run, spec, refresh=["counted"])
    assert {n.split(".")[-1]: r.status for n, r in only.datasets.items()} == {
        "numbers": "SKIPPED",
        "doubled": "SKIPPED",
        "counted": "COMPLETED",
    }

    spec = definition(project, "chain", ["p/chain.py"], {"n": "4"})
    again = run_definition(run, spec, full_refresh=True)
    assert [r.rows_written for r in again.datasets.values()] == [4, 4, 1]
    assert run.store.read("lh.sales.counted").collect()[0][0] == 4

    spec = definition(project, "chain", ["p/chain.py"], {"n": "7"})
    failed = run_definition(run, spec)
    assert failed.error == (
        "lh.sales.numbers: expectation 'small' (id < 5) failed for 2 of 7 rows, e.g. {'id': 5} "
        f"({project.root / 'p' / 'chain.py'}:5)"
    )
    assert failed.datasets["lh.sales.numbers"].status == "FAILED"
    assert run.store.read("lh.sales.numbers").count() == 4  # nothing written


def test_sql_definitions_with_a_stream_placeholder(run: RunContext, project: Project) -> None:
    """The adapter from parsed SQL (helper sdp-sql) to the graph, with hand-built values."""
    from lakehouse.pipelines.declarative.registry import LocalRegistry

    write(
        project.root / "p" / "base.py",
        """
        from pyspark import pipelines as dp

        @dp.table
        def events():
            return spark.createDataFrame([(1, "a"), (2, None), (3, "c")], "id long, tag string")
        """,
    )
    spec = definition(project, "sqlp", ["p/base.py"])
    where = SourceLocation(str(project.root / "p" / "x.sql"), 1)
    defs = [
        SqlDataset(
            kind="streaming_table",
            name="tagged",
            location=where,
            query=SqlQuery("SELECT id, tag FROM s1", (StreamRead("s1", table="events"),)),
            expectations=(Expectation("has_tag", "tag IS NOT NULL", "drop"),),
        ),
        SqlDataset(
            kind="materialized_view",
            name="tag_count",
            location=where,
            query=SqlQuery("SELECT count(*) AS n FROM tagged"),
        ),
        SqlDataset(kind="streaming_table", name="copy", location=where),
        SqlFlow(
            name="into_copy",
            target="copy",
            location=where,
            query=SqlQuery("SELECT id FROM s2", (StreamRead("s2", table="tagged"),)),
        ),
    ]
    original = LocalRegistry.register_output

    def with_sql(self: LocalRegistry, output: object) -> None:
        original(self, output)  # type: ignore[arg-type]
        if getattr(output, "name", "") == "events":
            self.add_sql(defs)

    LocalRegistry.register_output = with_sql  # type: ignore[method-assign]
    try:
        update = run_definition(run, spec)
    finally:
        LocalRegistry.register_output = original  # type: ignore[method-assign]
    assert update.error is None, update.error
    assert {n.split(".")[-1]: (r.rows_written, r.dropped) for n, r in update.datasets.items()} == {
        "events": (3, 0),
        "tagged": (2, 1),
        "tag_count": (1, 0),
        "copy": (2, 0),
    }
    assert run.store.read("lh.sales.tag_count").collect()[0]["n"] == 2


def test_sql_file_library(run: RunContext, project: Project) -> None:
    write(
        project.root / "p" / "numbers.sql",
        """
        CREATE MATERIALIZED VIEW ten AS SELECT id FROM range(${n});
        CREATE MATERIALIZED VIEW big (
          CONSTRAINT big EXPECT (id > 4) ON VIOLATION DROP ROW
        ) AS SELECT id FROM ten;
        """,
    )
    update = run_definition(run, definition(project, "sqlf", ["p/numbers.sql"], {"n": "10"}))
    assert update.error is None, update.error
    assert {n.split(".")[-1]: (r.rows_written, r.dropped) for n, r in update.datasets.items()} == {
        "ten": (10, 0),
        "big": (5, 5),
    }


def test_notebook_library_and_a_view_with_expectations(run: RunContext, project: Project) -> None:
    cells = [
        {"cell_type": "markdown", "source": ["# a pipeline notebook"]},
        {"cell_type": "code", "source": ["%pip install nothing\n", "import dlt\n"]},
        {
            "cell_type": "code",
            "source": [
                "@dlt.view\n",
                "@dlt.expect_or_drop('odd', 'id % 2 = 1')\n",
                "def odd_numbers():\n",
                "    return spark.range(10)\n",
                "\n",
                "@dlt.table\n",
                "def kept():\n",
                "    return dlt.read('odd_numbers')\n",
            ],
        },
    ]
    notebook = project.root / "nb" / "pipeline.ipynb"
    notebook.parent.mkdir(parents=True)
    notebook.write_text(json.dumps({"cells": cells, "nbformat": 4, "nbformat_minor": 5}))
    update = run_definition(run, definition(project, "nb", ["nb/pipeline"]))
    assert update.error is None, update.error
    assert {
        n.split(".")[-1]: (r.kind, r.rows_written, r.dropped) for n, r in update.datasets.items()
    } == {
        "odd_numbers": ("temporary_view", 0, 5),
        "kept": ("streaming_table", 5, 0),
    }
    assert run.store.read("lh.sales.odd_numbers_quarantine").count() == 5


def test_streaming_from_a_batch_view_is_an_error(run: RunContext, project: Project) -> None:
    write(
        project.root / "p" / "batchview.py",
        """
        from pyspark import pipelines as dp

        @dp.temporary_view
        def small():
            return spark.range(3)

        @dp.table
        def copied():
            return spark.readStream.table("small")
        """,
    )
    update = run_definition(run, definition(project, "bv", ["p/batchview.py"]))
    assert update.error == (
        "lh.sales.copied: a stream read of lh.sales.small, a view without a streaming source "
        f"(read it with spark.read.table / dp.read) ({project.root / 'p' / 'batchview.py'}:7)"
    )
    assert update.datasets["lh.sales.copied"].status == "FAILED"
