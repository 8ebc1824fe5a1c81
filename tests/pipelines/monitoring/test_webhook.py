"""Alerts reach a real HTTP server on 127.0.0.1; a run without alerts or a dead hook posts nothing."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lakehouse.bundle.context import RunReport, TaskContext
from lakehouse.config import load_project
from lakehouse.pipelines.monitoring.checks import MetricRow
from lakehouse.pipelines.monitoring.monitor import MonitorResult, announce

received: list[tuple[str, str, dict[str, Any]]] = []


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        received.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    received.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hooks/monitoring"
    httpd.shutdown()
    httpd.server_close()


def _ctx(project_dir: Path, url: str) -> TaskContext:
    project = load_project(project_dir, var_overrides={"monitoring_webhook_url": url})
    report = RunReport(job="t", run_id="r1", target="local", engine="sail")
    return TaskContext(None, project, None, report, task_key="monitor_model")  # type: ignore[arg-type]


def _result(*rows: MetricRow) -> MonitorResult:
    return MonitorResult(
        "churn_model", "3", "r1-churn", dt.datetime(2026, 1, 2, 3, 4, 5), list(rows)
    )


DRIFT = MetricRow(
    "drift", "total_spend", "psi", 0.51, 0.2, True, "3", message="drift of total_spend: PSI 0.51"
)
P_ROW = MetricRow("drift", "total_spend", "ks_pvalue", 1e-30, 0.005, True, "3")
QUIET = MetricRow("drift", "plan", "psi", 0.01, 0.2, False, "3")


def test_one_post_per_run_with_its_alerts(
    demo_project_dir: Path, server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = _ctx(demo_project_dir, server)
    announce(ctx, _result(DRIFT, P_ROW, QUIET))
    assert received == [
        (
            "/hooks/monitoring",
            "application/json",
            {
                "monitor_run_id": "r1-churn",
                "monitored_at": "2026-01-02T03:04:05Z",
                "model_name": "churn_model",
                "model_version": "3",
                "table": "lakehouse.meta.model_monitoring",
                "alert_count": 1,
                "alerts": [
                    {
                        "kind": "drift",
                        "subject": "total_spend",
                        "metric": "psi",
                        "value": 0.51,
                        "threshold": 0.2,
                        "model_version": "3",
                        "message": "drift of total_spend: PSI 0.51",
                    }
                ],
            },
        )
    ]
    assert "ALERT churn_model v3 (drift) drift of total_spend: PSI 0.51" in capsys.readouterr().out


def test_no_alerts_no_post(demo_project_dir: Path, server: str) -> None:
    announce(_ctx(demo_project_dir, server), _result(QUIET))
    assert received == []


def test_an_unreachable_hook_is_noted_not_raised(demo_project_dir: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ctx = _ctx(demo_project_dir, f"http://127.0.0.1:{port}/")
    announce(ctx, _result(DRIFT))
    assert any(n.startswith("monitoring webhook failed:") for n in ctx.report.notes)
