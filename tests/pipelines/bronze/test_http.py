"""API -> Bronze against the real sample data API on 127.0.0.1: batches, pages, faults, secrets."""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pyspark.sql import SparkSession
from rich.console import Console

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import Project, load_project
from lakehouse.config.sources import FileSource, HttpSource
from lakehouse.io.delta import DeltaStore
from lakehouse.pipelines.bronze.http import HttpSourceError, redact_url
from lakehouse.pipelines.bronze.ingest import ingest_http_source, ingest_source
from lakehouse.samples.api import (
    COLUMNS,
    RequestClock,
    RunningSampleApi,
    SampleApiSettings,
    run_sample_api,
)
from lakehouse.summary import render_report
from tests.support import session_engine

# also in the distributed invocation (make test-cluster: Sail local-cluster, 2 workers)
pytestmark = pytest.mark.distributed

TOKEN = "s3cr3t-t0ken-do-not-leak"

BUNDLE = """
bundle: {name: t}
include: [conf/*.yml]
variables:
  data_root: {default: ./data}
  api: {default: "http://127.0.0.1:1"}
targets: {local: {default: true}}
"""
CONF = """
catalog:
  name: c
  storage_root: ${var.data_root}/tables
  schemas:
    bronze:
      tables:
        events:
          layer: bronze
          columns:
            - {name: event_id, type: string}
            - {name: customer_id, type: string}
            - {name: event_ts, type: timestamp}
            - {name: product, type: string}
            - {name: quantity, type: int}
            - {name: amount, type: double}
            - {name: status, type: string}
        customers:
          layer: bronze
          columns:
            - {name: customer_id, type: string}
            - {name: name, type: string}
            - {name: region, type: string}
sources:
  events:
    kind: http
    url: ${var.api}/data
    params: {group_number: "1"}
    auth: {token_env: SAMPLE_API_TOKEN, query_param: api_key}
    records_field: data
    columns: [COLUMNS]
    retry: {max_attempts: 5, backoff_s: 0.01}
    timeout_s: 0.5
    rotating: {batch_id_field: batch_number, poll_interval_s: 0.05, max_wait_s: 3}
    target: c.bronze.events
  customers_pages:
    kind: http
    url: ${var.api}/customers/pages
    auth: {token_env: SAMPLE_API_TOKEN}
    pagination: {style: page, page_size: 100}
    retry: {max_attempts: 3, backoff_s: 0.01}
    target: c.bronze.customers
  customers_offset:
    kind: http
    url: ${var.api}/customers/offset
    auth: {token_env: SAMPLE_API_TOKEN}
    pagination: {style: offset, page_size: 150}
    target: c.bronze.customers
  customers_cursor:
    kind: http
    url: ${var.api}/customers/cursor
    auth: {token_env: SAMPLE_API_TOKEN}
    pagination: {style: cursor, page_size: 300}
    target: c.bronze.customers
  customers_links:
    kind: http
    url: ${var.api}/customers/links
    auth: {token_env: SAMPLE_API_TOKEN, query_param: api_key}
    pagination: {style: next_link, page_size: 400}
    target: c.bronze.customers
""".replace("COLUMNS", ", ".join(COLUMNS))


@pytest.fixture()
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSampleApi]:
    monkeypatch.setenv("SAMPLE_API_TOKEN", TOKEN)
    settings = SampleApiSettings(interval_s=1.0, batches=3, batch_size=5, token=TOKEN)
    with run_sample_api(settings, clock=RequestClock(0.125)) as running:
        yield running


@pytest.fixture()
def project(tmp_path: Path, api: RunningSampleApi) -> Project:
    (tmp_path / "conf").mkdir()
    (tmp_path / "bundle.yml").write_text(BUNDLE)
    (tmp_path / "conf" / "c.yml").write_text(CONF)
    return load_project(tmp_path, var_overrides={"api": api.base_url})


def _ctx(spark: SparkSession, project: Project, run_id: str) -> TaskContext:
    tables = DeltaStore(spark, project, session_engine(spark))
    tables.register_all()
    return TaskContext(
        spark, project, tables, RunReport("t", run_id, "local", session_engine(spark)), "ingest"
    )


def _fault(api: RunningSampleApi, **body: object) -> None:
    reply = requests.post(
        f"{api.base_url}/faults", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    assert reply.status_code == 200, reply.text


@pytest.mark.delta
def test_rotating_batches_land_once_until_the_api_is_exhausted(
    spark: SparkSession, project: Project
) -> None:
    ctx = _ctx(spark, project, "r1")
    summary = ingest_http_source(ctx, "events")
    assert (summary.units, summary.rows, summary.corrupt_rows, summary.rescued_rows) == (
        3,
        15,
        0,
        0,
    )
    bronze = ctx.tables.read("c.bronze.events")
    assert sorted({r["_batch_id"] for r in bronze.collect()}) == ["1", "2", "3"]
    assert {r["_http_status"] for r in bronze.collect()} == {200}
    assert {r["_request"] for r in bronze.collect()} == {
        f"{project.variables['api']}/data?group_number=1&api_key=***"
    }
    assert bronze.where("event_ts IS NULL OR quantity IS NULL").count() == 0
    responses = ctx.tables.read("c.meta.http_responses").collect()
    assert sorted((r["batch_id"], r["records"]) for r in responses) == [
        ("1", 5),
        ("2", 5),
        ("3", 5),
    ]
    again = ingest_http_source(_ctx(spark, project, "r2"), "events")
    assert (again.units, again.rows) == (0, 0)
    assert ctx.tables.row_count("c.bronze.events") == 15


def test_5xx_429_timeouts_and_truncated_bodies_are_retried(
    spark: SparkSession, project: Project, api: RunningSampleApi
) -> None:
    _fault(api, kind="5xx", count=1, status=503, paths=["/data"])
    _fault(api, kind="429", count=1, retry_after=0, paths=["/data"])
    _fault(api, kind="slow", count=1, delay_s=1.0, paths=["/data"])
    _fault(api, kind="truncated", count=1, paths=["/data"])
    ctx = _ctx(spark, project, "r1")
    summary = ingest_http_source(ctx, "events")
    assert (summary.units, summary.rows, summary.corrupt_rows) == (3, 15, 0)


@pytest.mark.delta
def test_a_repeated_batch_is_not_appended_twice(
    spark: SparkSession, project: Project, api: RunningSampleApi
) -> None:
    ctx = _ctx(spark, project, "r1")
    project_one = project.sources["events"].model_copy(
        update={
            "rotating": project.sources["events"].rotating.model_copy(update={"max_batches": 1})
        }  # type: ignore[union-attr]
    )
    _with_source(project, "events", project_one)
    assert ingest_http_source(ctx, "events").rows == 5
    _fault(api, kind="repeat", count=50, paths=["/data"])  # keep serving batch 1
    again = ingest_http_source(_ctx(spark, project, "r2"), "events")
    assert (again.units, again.rows) == (0, 0)
    assert ctx.tables.row_count("c.bronze.events") == 5


def test_permanent_failure_fails_clearly_and_appends_nothing(
    spark: SparkSession, project: Project, api: RunningSampleApi
) -> None:
    ctx = _ctx(spark, project, "r1")
    before = ctx.tables.version("c.bronze.events")
    _fault(api, kind="5xx", count=10, status=502, paths=["/data"])
    with pytest.raises(HttpSourceError) as failure:
        ingest_http_source(ctx, "events")
    message = str(failure.value)
    assert message == (
        f"source events: gave up on {project.variables['api']}/data?group_number=1&api_key=*** "
        "after 5 attempts: HTTP 502"
    )
    assert ctx.tables.version("c.bronze.events") == before
    requests.delete(
        f"{api.base_url}/faults", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    _fault(api, kind="4xx", count=1, status=404, paths=["/data"])
    with pytest.raises(HttpSourceError, match=r"^source events: HTTP 404 from .*api_key=\*\*\*"):
        ingest_http_source(ctx, "events")
    assert ctx.tables.version("c.bronze.events") == before


def test_a_response_that_stays_malformed_is_kept_raw(
    spark: SparkSession, project: Project, api: RunningSampleApi
) -> None:
    _fault(api, kind="truncated", count=5, paths=["/data"])
    ctx = _ctx(spark, project, "r1")
    summary = ingest_http_source(ctx, "events")
    assert (summary.rows, summary.corrupt_rows) == (16, 1)
    corrupt = ctx.tables.read("c.bronze.events").where("_corrupt IS NOT NULL").collect()
    assert corrupt[0]["_corrupt"].startswith("malformed JSON response: response is not valid JSON")
    assert corrupt[0]["_raw"].startswith('{"group_number":1,"batch_number":1')


@pytest.mark.parametrize(
    "source", ["customers_pages", "customers_offset", "customers_cursor", "customers_links"]
)
def test_every_pagination_style_reads_each_record_once(
    spark: SparkSession, project: Project, source: str
) -> None:
    ctx = _ctx(spark, project, "r1")
    summary = ingest_http_source(ctx, source)
    assert summary.rows == 1000
    customers = ctx.tables.read("c.bronze.customers")
    assert customers.select("customer_id").distinct().count() == 1000
    assert customers.where("_rescued_data IS NULL").count() == 0  # extra fields are rescued
    again = ingest_http_source(_ctx(spark, project, "r2"), source)
    assert again.rows == 0
    assert ctx.tables.row_count("c.bronze.customers") == 1000


def test_the_token_appears_nowhere(
    spark: SparkSession, project: Project, caplog: pytest.LogCaptureFixture, api: RunningSampleApi
) -> None:
    caplog.set_level(logging.DEBUG)
    _fault(api, kind="5xx", count=1, paths=["/data"])
    ctx = _ctx(spark, project, "r1")
    for name in ("events", "customers_links", "customers_pages"):
        ingest_source(ctx, name)
    ctx.report.tasks.clear()
    out = io.StringIO()
    render_report(ctx.report, Console(file=out, width=300))
    texts = [out.getvalue(), caplog.text, repr(ctx.report)]
    for table in ("c.bronze.events", "c.bronze.customers", "c.meta.http_responses"):
        texts.extend(str(r.asDict()) for r in ctx.tables.read(table).collect())
    leaks = [
        text[max(0, text.find(TOKEN) - 200) : text.find(TOKEN) + 50]
        for text in texts
        if TOKEN in text
    ]
    assert leaks == []
    assert any("api_key=***" in text for text in texts)
    for path in project.data_root.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_missing_token_env_is_a_clear_error(
    spark: SparkSession, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAMPLE_API_TOKEN")
    with pytest.raises(HttpSourceError, match="environment variable SAMPLE_API_TOKEN is not set"):
        ingest_http_source(_ctx(spark, project, "r1"), "events")


def _with_source(project: Project, name: str, spec: FileSource | HttpSource) -> None:
    """Replace a source's spec in the loaded project: the spec and its handle."""
    object.__setattr__(project, "sources", {**project.sources, name: spec})
    handle = dataclasses.replace(project.source_handles[name], spec=spec)
    object.__setattr__(project, "source_handles", {**project.source_handles, name: handle})


def test_redact_url_masks_only_secret_params() -> None:
    assert (
        redact_url("http://h/p?a=1&api_key=xyz&b=2", {"api_key"})
        == "http://h/p?a=1&api_key=***&b=2"
    )
    assert redact_url("http://h/p", {"api_key"}) == "http://h/p"


def test_max_requests_bounds_a_run(spark: SparkSession, project: Project) -> None:
    spec = project.sources["customers_pages"].model_copy(update={"max_requests": 3})
    _with_source(project, "customers_pages", spec)
    ctx = _ctx(spark, project, "r1")
    with pytest.raises(
        HttpSourceError, match=r"reached max_requests=3 at .*/customers/pages\?page=4"
    ):
        ingest_http_source(ctx, "customers_pages")
    assert ctx.tables.row_count("c.bronze.customers") == 0  # pages are committed together
