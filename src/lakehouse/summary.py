"""Rich rendering of a run report: tasks, tables written, models, counters."""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from lakehouse.bundle.context import RunReport
from lakehouse.io.results import WriteResult

STATUS_STYLE = {"SUCCESS": "green", "FAILED": "bold red", "SKIPPED": "yellow"}


def _by_table(writes: list[WriteResult]) -> dict[tuple[str, str], list[WriteResult]]:
    """Writes grouped by (table, operation), in order of first appearance."""
    groups: dict[tuple[str, str], list[WriteResult]] = {}
    for w in writes:
        groups.setdefault((w.table, w.operation), []).append(w)
    return groups


def render_report(report: RunReport, console: Console) -> None:
    """Print the closing summary of a job run."""
    tasks = Table(
        title=f"job {report.job} · run {report.run_id} · target {report.target} · engine {report.engine}"
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
    console.print(tasks)

    if report.writes:
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
        for (table, operation), group in _by_table(report.writes).items():
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
        console.print(writes)

    if report.counters:
        counters = Table(title="counts")
        counters.add_column("scope")
        counters.add_column("counts", overflow="fold")
        for scope, values in report.counters.items():
            counters.add_row(scope, ", ".join(f"{k}={v:,}" for k, v in values.items()))
        console.print(counters)

    if report.models:
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
        console.print(models)
        candidates = [
            (m, name, metrics) for m in report.models for name, metrics in m.candidates.items()
        ]
        if candidates:
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
            console.print(ranked)
    for note in report.notes:
        console.print(f"note: {note}")
    duration = time.time() - report.started
    verdict = "[green]succeeded[/]" if report.succeeded else "[bold red]failed[/]"
    console.print(f"run {report.run_id} {verdict} in {duration:.1f}s")


SCORE_COLUMNS = ("roc_auc", "f1", "precision", "recall", "accuracy")


def _score(metrics: dict[str, float], name: str) -> str:
    return f"{metrics[name]:.3f}" if name in metrics else "-"
