"""Rich rendering of a run report: tasks, tables written, models, counters."""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from lakehouse.bundle.context import RunReport
from lakehouse.io.results import WriteResult

STATUS_STYLE = {"SUCCESS": "green", "FAILED": "bold red", "SKIPPED": "yellow", "EXCLUDED": "dim"}


def _by_table(writes: list[WriteResult]) -> dict[tuple[str, str], list[WriteResult]]:
    """Writes grouped by (table, operation), in order of first appearance."""
    groups: dict[tuple[str, str], list[WriteResult]] = {}
    for w in writes:
        groups.setdefault((w.table, w.operation), []).append(w)
    return groups


def render_report(report: RunReport, console: Console) -> None:
    """Print the closing summary of a job run."""
    console.print(_tasks_table(report))
    if report.writes:
        console.print(_writes_table(report.writes))
    if report.counters:
        console.print(_counters_table(report.counters))
    if report.models:
        console.print(_models_table(report))
        candidates = _candidates_table(report)
        if candidates is not None:
            console.print(candidates)
    for note in report.notes:
        console.print(f"note: {note}")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    duration = time.time() - report.started
    console.print(f"run {report.run_id} {_verdict(report)} in {duration:.1f}s")


def _verdict(report: RunReport) -> str:
    """``failed``, ``succeeded with N warnings`` (input kept aside) or ``succeeded``."""
    if not report.succeeded:
        return "[bold red]failed[/]"
    if report.warnings:
        n = len(report.warnings)
        return f"[yellow]succeeded with {n} warning{'s' if n > 1 else ''}[/]"
    return "[green]succeeded[/]"


def _tasks_table(report: RunReport) -> Table:
    """One row per task: status, seconds and the error."""
    mode = f" ({report.engine_mode})" if report.engine_mode else ""
    tasks = Table(
        title=f"job {report.job} · run {report.run_id} · target {report.target} · engine {report.engine}{mode}"
    )
    tasks.add_column("task")
    tasks.add_column("status")
    tasks.add_column("seconds", justify="right")
    tasks.add_column("detail", overflow="fold")
    for outcome in report.tasks:
        style = STATUS_STYLE.get(outcome.status, "")
        tasks.add_row(
            outcome.task_key,
            f"[{style}]{outcome.status}[/]",
            f"{outcome.seconds:.1f}",
            outcome.error,
        )
    return tasks


def _writes_table(written: list[WriteResult]) -> Table:
    """One row per table and operation: commits, rows written, last version, seconds."""
    writes = Table(title="tables written")
    for col, justify in (
        ("table", "left"),
        ("operation", "left"),
        ("commits", "right"),
        ("rows written", "right"),
        ("version", "right"),
        ("seconds", "right"),
    ):
        writes.add_column(col, justify=justify)  # type: ignore[arg-type]
    for (table, operation), group in _by_table(written).items():
        committed = [w for w in group if w.committed]
        last = group[-1]
        version = str(last.version) if committed else f"{last.version} (no change)"
        writes.add_row(
            table,
            operation,
            str(len(committed)),
            f"{sum(w.rows_written for w in group):,}",
            version,
            f"{sum(w.seconds for w in group):.1f}",
        )
    return writes


def _counters_table(counters: dict[str, dict[str, int]]) -> Table:
    """One row per counter scope."""
    table = Table(title="counts")
    table.add_column("scope")
    table.add_column("counts", overflow="fold")
    for scope, values in counters.items():
        table.add_row(scope, ", ".join(f"{k}={v:,}" for k, v in values.items()))
    return table


def _models_table(report: RunReport) -> Table:
    """One row per model: version, aliases, whether it retrained, the best candidate's scores."""
    models = Table(title="models")
    for col in ("model", "version", "aliases", "retrained", "best", *SCORE_COLUMNS, "note"):
        models.add_column(col, overflow="fold")
    for m in report.models:
        models.add_row(
            m.name,
            m.version,
            ", ".join(f"@{a}" for a in m.aliases),
            "yes" if m.retrained else "no",
            m.best or "-",
            *[_score(m.metrics, c) for c in SCORE_COLUMNS],
            m.note,
        )
    return models


def _candidates_table(report: RunReport) -> Table | None:
    """One row per model candidate with its holdout scores (None: no candidates)."""
    candidates = [
        (m, name, metrics) for m in report.models for name, metrics in m.candidates.items()
    ]
    if not candidates:
        return None
    ranked = Table(title="candidates (holdout)")
    for col in ("model", "candidate", *SCORE_COLUMNS, "train s", "predict s"):
        ranked.add_column(col)
    for m, name, metrics in candidates:
        ranked.add_row(
            m.name,
            name + (" *" if name == m.best else ""),
            *[_score(metrics, c) for c in SCORE_COLUMNS],
            f"{metrics.get('training_seconds', 0.0):.2f}",
            f"{metrics.get('prediction_seconds', 0.0):.3f}",
        )
    return ranked


SCORE_COLUMNS = ("roc_auc", "f1", "precision", "recall", "accuracy")


def _score(metrics: dict[str, float], name: str) -> str:
    return f"{metrics[name]:.3f}" if name in metrics else "-"
