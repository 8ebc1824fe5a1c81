"""The closing summary's verdict: failed, succeeded with warnings, or plainly succeeded."""

from __future__ import annotations

import io

from rich.console import Console

from lakehouse.bundle.context import RunReport, TaskOutcome
from lakehouse.summary import render_report


def _printed(report: RunReport) -> str:
    out = io.StringIO()
    render_report(report, Console(file=out, width=200, no_color=True))
    return out.getvalue()


def _report(*statuses: str) -> RunReport:
    report = RunReport(job="j", run_id="r1", target="local", engine="sail")
    for i, status in enumerate(statuses):
        report.tasks.append(TaskOutcome(task_key=f"t{i}", status=status, seconds=0.1))
    return report


def test_input_kept_aside_is_not_plain_success() -> None:
    report = _report("SUCCESS")
    report.warnings.append("drop: quarantined files: /landing/bad.csv (not valid UTF-8)")
    text = _printed(report)
    assert "warning: drop: quarantined files: /landing/bad.csv" in text
    assert "run r1 succeeded with 1 warning in" in text


def test_plain_success_and_failure_verdicts() -> None:
    assert "run r1 succeeded in" in _printed(_report("SUCCESS"))
    failed = _report("SUCCESS", "FAILED")
    failed.warnings.append("x")
    assert "run r1 failed in" in _printed(failed)
