"""What a run does with job-level settings: job parameters and notifications.

Job parameters (``resources.jobs.<job>.parameters``) are resolved once per run: each
default, overridden by ``--params name=value``; an unknown name is an error naming the
defined ones. Email notifications and webhook destination ids are not sent locally: the run
notes say who *would* be notified, at start and end (and when the run's duration passed a
``health`` rule's ``RUN_DURATION_SECONDS`` threshold).
"""

from __future__ import annotations

from collections.abc import Mapping

from lakehouse.bundle.context import RunReport
from lakehouse.config.jobs import Job
from lakehouse.core.errors import ConfigError, LakehouseError

DURATION_EVENT = "on_duration_warning_threshold_exceeded"


def parse_params(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "b=x"]`` (``--params``) -> ``{"a": "1", "b": "x"}``; also ``a=1,b=x``."""
    out: dict[str, str] = {}
    for item in items or []:
        for part in item.split(","):
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise ConfigError("--params", part, "expected name=value")
            out[name.strip()] = value
    return out


def resolve_job_parameters(
    job_name: str, job: Job, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The run's job parameters: the job's defaults, then ``overrides`` (``--params``)."""
    values = job.parameter_defaults
    for name, value in (overrides or {}).items():
        if name not in values:
            defined = ", ".join(values) or "none"
            raise ConfigError(
                "--params",
                name,
                f"job {job_name} has no parameter {name!r} "
                f"(resources.jobs.{job_name}.parameters defines: {defined})",
            )
        values[name] = str(value)
    return values


def would_notify(job: Job, event: str) -> list[str]:
    """Run notes for the email addresses and webhook destination ids of ``event``."""
    notes = []
    emails = list(getattr(job.email_notifications, event, []) or [])
    if emails:
        notes.append(f"would notify {', '.join(emails)} by email ({event}; no mail sent locally)")
    ids = [h.id for h in getattr(job.webhook_notifications, event, []) or [] if h.id]
    if ids:
        notes.append(
            f"would notify destination {', '.join(ids)} ({event}; Databricks destinations "
            "are not called locally)"
        )
    return notes


def duration_threshold(job: Job) -> int | None:
    """The ``health`` rule's ``RUN_DURATION_SECONDS`` threshold, if any."""
    if job.health is None:
        return None
    values = [r.value for r in job.health.rules if r.metric == "RUN_DURATION_SECONDS"]
    return min(values) if values else None


def end_notes(job: Job, report: RunReport, seconds: float) -> list[str]:
    """The "would notify" notes at the end of a run (success or failure, slow run)."""
    skipped = bool(report.tasks) and all(t.status == "SKIPPED" for t in report.tasks)
    quiet = bool(job.email_notifications.no_alert_for_skipped_runs) or bool(
        job.notification_settings and job.notification_settings.no_alert_for_skipped_runs
    )
    if skipped and quiet:
        return []
    notes = would_notify(job, "on_success" if report.succeeded else "on_failure")
    threshold = duration_threshold(job)
    if threshold is not None and seconds > threshold:
        notes += [
            f"{note} (the run took {seconds:.0f}s, over the {threshold}s health threshold)"
            for note in would_notify(job, DURATION_EVENT)
        ]
    return notes


ENV_JOB_PARAMETERS = "LAKEHOUSE_JOB_PARAMETERS"
"""JSON object of a run's ``--params``, for task processes (spark-submit) to resolve alike."""


def job_parameters_from_env(
    project_jobs: Mapping[str, Job], job_name: str | None
) -> dict[str, str]:
    """A task process's job parameters: the job's defaults, then ``$LAKEHOUSE_JOB_PARAMETERS``."""
    import json
    import os

    job = project_jobs.get(job_name) if job_name else None
    if job is None or job_name is None:
        return {}
    raw = os.environ.get(ENV_JOB_PARAMETERS) or "{}"
    try:
        overrides = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(ENV_JOB_PARAMETERS, "", f"not a JSON object: {exc}") from None
    if not isinstance(overrides, dict):
        raise ConfigError(ENV_JOB_PARAMETERS, "", "not a JSON object")
    return resolve_job_parameters(job_name, job, {str(k): str(v) for k, v in overrides.items()})


class JobTimeoutError(LakehouseError):
    """The job's ``timeout_seconds`` passed before this task could start."""


def job_deadline(job: Job, began: float) -> float | None:
    """When the run of ``job`` times out (``time.monotonic()``), None without a timeout."""
    return began + job.timeout_seconds if job.timeout_seconds else None


def attempt_deadline(timeout_seconds: int, now: float, job_end: float | None) -> float | None:
    """An attempt's deadline: its task's timeout, and no later than the job's."""
    own = now + timeout_seconds if timeout_seconds else None
    if job_end is None:
        return own
    return job_end if own is None else min(own, job_end)
