"""The drift page on a real run of the monitoring job (``lakehouse.pipelines.monitoring``).

Batch scoring with the champion gives the job a current window; its rows land in
``meta.model_monitoring`` after the fixture's three older synthetic runs, so the page's
latest run is the job's own.
"""

from __future__ import annotations

import re

import httpx
from pyspark.sql import SparkSession

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.pipelines.ml.score import score_model
from lakehouse.pipelines.monitoring.monitor import monitor_model
from tests.apps.serving.conftest import MODEL
from tests.apps.ui.conftest import PSI, UiStack
from tests.apps.ui.test_pages import text
from tests.support import session_engine


def test_drift_page_shows_the_monitoring_jobs_latest_run(
    ui_stack: UiStack, spark: SparkSession
) -> None:
    report = RunReport(
        job="ui-test", run_id="r-ui-monitor", target="local", engine=session_engine(spark)
    )
    ctx = TaskContext(spark, ui_stack.project, ui_stack.tables, report, task_key="monitor")
    with ui_stack.tables.task_scope("monitor"):
        score_model(ctx, MODEL)
        result = monitor_model(ctx, MODEL)
    psi = {r.subject: r for r in result.rows if r.kind == "drift" and r.metric == "psi"}
    assert psi, "the job measured no PSI"

    page = httpx.get(ui_stack.ui_url + "/drift", timeout=60).text
    charts = dict(
        (f, bool(a))
        for a, f in re.findall(r'<div class="chart( alert)?" data-feature="([^"]+)">', page)
    )
    # every feature the job measured has a chart; its latest point decides the alert frame
    assert set(charts) == set(psi) | set(PSI)
    assert {f: charts[f] for f in psi} == {f: r.alert for f, r in psi.items()}
    heading = re.search(r"<h2>Latest monitoring run(.*?)</h2>", page, re.DOTALL)
    assert heading is not None
    assert text(heading.group(1)).startswith(f"{result.monitor_run_id} ·")
    alerts = sum(r.alert for r in result.rows)
    assert text(heading.group(1)).endswith(f"{alerts} alert{'s' if alerts != 1 else ''}") or (
        alerts == 0 and "alert" not in text(heading.group(1))
    )
    table = re.search(r'<table id="monitor-results">(.*?)</table>', page, re.DOTALL)
    assert table is not None
    assert len(re.findall(r"<tr( class=\"alert\")?>\s*<td>", table.group(1))) == len(result.rows)
