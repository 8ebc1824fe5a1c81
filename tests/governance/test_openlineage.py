"""OpenLineage events: naming, the client's own models, HTTP to a Marquez-like endpoint, failures."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from openlineage.client.event_v2 import RunEvent, RunState
from openlineage.client.facet_v2 import column_lineage_dataset, dataset_version_dataset
from openlineage.client.serde import Serde

from lakehouse.config import load_project
from lakehouse.config.project import Project
from lakehouse.governance.lineage.columns import ColumnMapping, InputRef, column_lineage
from lakehouse.governance.lineage.openlineage import (
    MAX_FAILURES,
    OpenLineageEmitter,
    dataset_naming,
    events_file,
    openlineage_emitter,
    parse_run_event,
    read_events,
    run_event,
    run_uuid,
)
from lakehouse.governance.lineage.recorder import TableWrite, TaskActivity

REPO = Path(__file__).resolve().parents[2]
BC = "lakehouse.bronze.customers"
SC = "lakehouse.silver.customers"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("ol_conf")
    shutil.copy(REPO / "bundle.yml", root / "bundle.yml")
    shutil.copytree(REPO / "conf", root / "conf")
    return load_project(root, var_overrides={"data_root": str(root / "data")})


@pytest.fixture(autouse=True)
def _no_openlineage_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "OPENLINEAGE_DISABLED"):
        monkeypatch.delenv(name, raising=False)


def refine_activity(project: Project) -> TaskActivity:
    """A Silver refine: MERGE into silver.customers from bronze.customers version 3."""
    activity = TaskActivity(
        job="demo",
        task="refine_silver",
        run_id="20260101T000000-abcd",
        principal="lakehouse-job",
        engine="sail",
        started_at=dt.datetime(2026, 1, 1, 0, 0, 0),
        reads={BC: 3, SC: 4, "lakehouse.meta.dq_results": 1},
    )
    activity.writes[SC] = TableWrite(
        SC, ["merge"], 5, 12, True, [InputRef("table", BC, 3)], column_lineage(project, SC)
    )
    return activity


def test_dataset_naming_follows_the_openlineage_conventions() -> None:
    assert dataset_naming("/data/tables/silver/orders") == ("file", "/data/tables/silver/orders")
    assert dataset_naming("file:///data/t") == ("file", "/data/t")
    assert dataset_naming("file:/data/t") == ("file", "/data/t")
    assert dataset_naming("s3a://bucket/lake/t") == ("s3://bucket", "lake/t")
    assert dataset_naming("gs://b/lake/t") == ("gs://b", "lake/t")
    assert dataset_naming("hdfs://nn:8020/lake/t") == ("hdfs://nn:8020", "/lake/t")
    assert dataset_naming("http://127.0.0.1:8765/data") == ("http://127.0.0.1:8765", "/data")


def test_run_ids_are_deterministic_uuids_per_task() -> None:
    a = run_uuid("r1", "demo", "refine_silver")
    assert a == run_uuid("r1", "demo", "refine_silver")
    assert a != run_uuid("r1", "demo", "build_gold") != run_uuid("r2", "demo", "refine_silver")
    assert str(uuid.UUID(a)) == a


def test_a_merge_event_has_input_and_output_datasets_with_versions(project: Project) -> None:
    event = run_event(project, "COMPLETE", refine_activity(project))
    assert event.eventType == RunState.COMPLETE
    assert (event.job.namespace, event.job.name) == ("lakehouse_demo", "demo.refine_silver")
    assert event.run.runId == run_uuid("20260101T000000-abcd", "demo", "refine_silver")
    assert event.inputs is not None and event.outputs is not None
    # silver.customers was read too, but it is the output; the meta table is bookkeeping
    [source] = event.inputs
    [target] = event.outputs
    tables = project.resolve_path(project.catalog.storage_root)
    assert (source.namespace, source.name) == ("file", f"{tables}/bronze/customers")
    assert (target.namespace, target.name) == ("file", f"{tables}/silver/customers")
    assert source.facets is not None and target.facets is not None
    version = source.facets["version"]
    assert isinstance(version, dataset_version_dataset.DatasetVersionDatasetFacet)
    assert version.datasetVersion == "3"
    assert target.facets["version"].datasetVersion == "5"  # type: ignore[attr-defined]
    assert target.facets["symlinks"].identifiers[0].name == SC  # type: ignore[attr-defined]
    lineage = target.facets["columnLineage"]
    assert isinstance(lineage, column_lineage_dataset.ColumnLineageDatasetFacet)
    [field] = lineage.fields["region"].inputFields
    assert (field.name, field.field) == (source.name, "region")
    assert target.outputFacets["outputStatistics"].rowCount == 12  # type: ignore[index,union-attr]


def test_events_round_trip_through_the_client_models(project: Project) -> None:
    activity = refine_activity(project)
    for state, error in (("START", None), ("COMPLETE", None), ("FAIL", ValueError("bad row"))):
        wire = json.loads(Serde.to_json(run_event(project, state, activity, error)))
        parsed = parse_run_event(wire)
        assert isinstance(parsed, RunEvent)
        assert json.loads(Serde.to_json(parsed)) == wire
    assert parsed.run.facets["errorMessage"].message == "bad row"  # type: ignore[index,union-attr]


def test_parsing_refuses_what_the_models_do_not_define(project: Project) -> None:
    wire = json.loads(Serde.to_json(run_event(project, "START", refine_activity(project))))
    with pytest.raises(ValueError, match="no field"):
        parse_run_event({**wire, "surprise": 1})
    bad_facet = {**wire["job"], "facets": {"x": {"_schemaURL": "https://x/#/$defs/NoSuchFacet"}}}
    with pytest.raises(ValueError, match="NoSuchFacet"):
        parse_run_event({**wire, "job": bad_facet})
    with pytest.raises(ValueError):
        parse_run_event({**wire, "run": {**wire["run"], "runId": "not-a-uuid"}})


def test_file_transport_appends_json_lines_under_the_data_root(project: Project) -> None:
    emitter = openlineage_emitter(project, "run-1")
    assert emitter is not None
    activity = refine_activity(project)
    emitter.start(activity)
    emitter.finish(activity, None)
    path = Path(events_file(project, "run-1"))
    assert path.parent == project.data_root / "lineage"
    events = read_events(path)
    assert [e.eventType for e in events] == [RunState.START, RunState.COMPLETE]


def test_disabled_by_environment(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    assert openlineage_emitter(project, "run-1") is None


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def marquez() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """A Marquez-like lineage endpoint on 127.0.0.1 that keeps what it receives."""
    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_http_transport_posts_to_a_marquez_compatible_endpoint(
    project: Project, marquez: tuple[str, list[tuple[str, dict[str, Any]]]]
) -> None:
    url, received = marquez
    configured = dataclasses.replace(
        project, variables={**project.variables, "openlineage_url": url}
    )
    emitter = openlineage_emitter(configured, "run-http")
    assert emitter is not None
    activity = refine_activity(project)
    emitter.start(activity)
    emitter.finish(activity, None)
    assert [path for path, _ in received] == ["/api/v1/lineage", "/api/v1/lineage"]
    events = [parse_run_event(body) for _, body in received]
    assert [e.eventType for e in events] == [RunState.START, RunState.COMPLETE]
    assert not Path(events_file(project, "run-http")).exists()


def test_an_unreachable_endpoint_warns_and_never_raises(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configured = dataclasses.replace(
        project, variables={**project.variables, "openlineage_url": f"http://127.0.0.1:{port}"}
    )
    emitter = OpenLineageEmitter(configured, "run-down")
    activity = refine_activity(project)
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="lakehouse.governance.lineage.openlineage"):
        for _ in range(MAX_FAILURES + 2):
            emitter.finish(activity, None)
    assert emitter.sent == 0
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "lakehouse.governance.lineage.openlineage"
    ]
    assert len(warnings) == MAX_FAILURES  # then it stops trying for this run
    assert "no more events this run" in warnings[-1]
    assert time.perf_counter() - started < 20


def test_columns_without_known_tables_are_left_out(project: Project) -> None:
    activity = refine_activity(project)
    activity.writes[SC].columns = {"x": ColumnMapping(("nowhere.s.t.c",))}
    [target] = run_event(project, "COMPLETE", activity).outputs or []
    assert "columnLineage" not in (target.facets or {})
