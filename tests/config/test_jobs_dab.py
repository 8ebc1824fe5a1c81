"""Job-level keys as Databricks Asset Bundles define them: accepted, typed, and refused
with the file and key when wrong."""

from __future__ import annotations

from typing import Any

import pytest

from lakehouse.bundle.context import RunReport, TaskOutcome
from lakehouse.bundle.job_level import (
    end_notes,
    parse_params,
    resolve_job_parameters,
    would_notify,
)
from lakehouse.config.job_settings import JOB_IGNORED_KEYS
from lakehouse.config.jobs import Job
from lakehouse.config.loader import validate
from lakehouse.core.errors import ConfigError

TASKS = [{"task_key": "t", "python_function_task": {"function": "os:getcwd"}}]

EVERY_KEY: dict[str, Any] = {
    "name": "every key",
    "parameters": [{"name": "run_date", "default": "2026-01-01"}, {"name": "n", "default": 3}],
    "tags": {"team": "data", "priority": 1},
    "email_notifications": {
        "on_start": ["a@example.com"],
        "on_success": ["a@example.com"],
        "on_failure": ["b@example.com"],
        "on_duration_warning_threshold_exceeded": ["c@example.com"],
        "on_streaming_backlog_exceeded": [],
        "no_alert_for_skipped_runs": True,
    },
    "webhook_notifications": {"on_failure": [{"id": "dest"}, {"url": "https://h.example.com"}]},
    "notification_settings": {
        "no_alert_for_skipped_runs": True,
        "no_alert_for_canceled_runs": True,
    },
    "trigger": {
        "pause_status": "UNPAUSED",
        "file_arrival": {
            "url": "/Volumes/main/raw/landing/",
            "min_time_between_triggers_seconds": 60,
            "wait_after_last_change_seconds": 120,
        },
    },
    "job_clusters": [{"job_cluster_key": "c", "new_cluster": {"spark_version": "15.4.x"}}],
    "environments": [{"environment_key": "default", "spec": {"client": "2"}}],
    "git_source": {
        "git_url": "https://github.com/o/r",
        "git_provider": "gitHub",
        "git_branch": "main",
    },
    "queue": {"enabled": True},
    "health": {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 60}]},
    "timeout_seconds": 3600,
    "edit_mode": "UI_LOCKED",
    "format": "MULTI_TASK",
    "performance_target": "PERFORMANCE_OPTIMIZED",
    "budget_policy_id": "policy-1",
    "deployment": {"kind": "BUNDLE", "metadata_file_path": "/x/metadata.json"},
    "run_as": {"service_principal_name": "sp"},
    "permissions": [
        {"level": "CAN_RUN", "group_name": "g"},
        {"level": "CAN_EDIT", "user_name": "u"},
        {"level": "CAN_MANAGE_RUN", "user_name": "v"},
        {"level": "IS_OWNER", "service_principal_name": "sp"},
    ],
    "max_concurrent_runs": 2,
    "tasks": TASKS,
}


def job(**settings: Any) -> Job:
    return validate(Job, {"tasks": TASKS, **settings}, "databricks.yml", "resources.jobs.j")


def test_every_job_level_key_is_accepted() -> None:
    spec = validate(Job, EVERY_KEY, "databricks.yml", "resources.jobs.j")
    assert spec.parameter_defaults == {"run_date": "2026-01-01", "n": "3"}
    assert spec.trigger is not None and spec.trigger.kind == "file_arrival"
    assert spec.email_notifications.on_failure == ["b@example.com"]
    assert [h.id or h.url for h in spec.webhook_notifications.on_failure] == [
        "dest",
        "https://h.example.com",
    ]
    assert [p.level for p in spec.permissions] == [
        "CAN_RUN",
        "CAN_EDIT",
        "CAN_MANAGE_RUN",
        "IS_OWNER",
    ]
    # what a bundle validate lists as ignored locally (helper dab-config owns the listing)
    set_keys = [k for k in JOB_IGNORED_KEYS if getattr(spec, k) is not None]
    assert set_keys == [
        "job_clusters",
        "environments",
        "git_source",
        "queue",
        "edit_mode",
        "format",
        "performance_target",
        "budget_policy_id",
        "deployment",
        "notification_settings",
    ]


def test_periodic_and_continuous() -> None:
    spec = job(trigger={"periodic": {"interval": 3, "unit": "WEEKS"}})
    assert spec.trigger is not None and spec.trigger.periodic is not None
    assert spec.trigger.periodic.seconds == 3 * 7 * 86_400
    assert job(continuous={"pause_status": "PAUSED"}).continuous is not None
    assert job(trigger={"table_update": {"table_names": ["a.b.c"], "condition": "ALL_UPDATED"}})


@pytest.mark.parametrize(
    ("settings", "where", "message"),
    [
        ({"job_cluster": []}, "resources.jobs.j.job_cluster", "unknown key"),
        (
            {"trigger": {"periodic": {"interval": 0, "unit": "DAYS"}}},
            "trigger.periodic.interval",
            "greater than or equal to 1",
        ),
        (
            {"trigger": {"periodic": {"interval": 1, "unit": "MINUTES"}}},
            "trigger.periodic.unit",
            "'HOURS', 'DAYS' or 'WEEKS'",
        ),
        ({"trigger": {}}, "resources.jobs.j.trigger", "exactly one of 'periodic'"),
        (
            {"trigger": {"file_arrival": {"url": "/x", "wait": 1}}},
            "trigger.file_arrival.wait",
            "unknown key",
        ),
        ({"parameters": [{"name": "a"}]}, "parameters[0].default", "required key is missing"),
        (
            {"parameters": [{"name": "a", "default": "1"}, {"name": "a", "default": "2"}]},
            "resources.jobs.j",
            "duplicate job parameter: a",
        ),
        (
            {"email_notifications": {"on_failure": "a@example.com"}},
            "email_notifications.on_failure",
            "list",
        ),
        (
            {"webhook_notifications": {"on_start": [{}]}},
            "webhook_notifications.on_start[0]",
            "exactly one of 'url' or 'id'",
        ),
        (
            {"permissions": [{"level": "CAN_DANCE", "user_name": "u"}]},
            "permissions[0].level",
            "CAN_RUN",
        ),
        ({"performance_target": "FAST"}, "performance_target", "PERFORMANCE_OPTIMIZED"),
        (
            {"schedule": {"quartz_cron_expression": "0 0 * * * ?"}, "continuous": {}},
            "resources.jobs.j",
            "at most one of 'schedule', 'trigger', 'continuous'",
        ),
    ],
)
def test_wrong_job_keys_name_the_file_and_key(
    settings: dict[str, Any], where: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        job(**settings)
    text = str(info.value)
    assert text.startswith("databricks.yml: resources.jobs.j"), text
    assert where in text and message in text, text


def test_job_parameters_resolve_with_overrides() -> None:
    spec = job(parameters=[{"name": "env", "default": "dev"}, {"name": "flag", "default": True}])
    assert resolve_job_parameters("j", spec) == {"env": "dev", "flag": "true"}
    assert resolve_job_parameters("j", spec, parse_params(["env=prod,flag=false"])) == {
        "env": "prod",
        "flag": "false",
    }
    assert parse_params(["a=x=y", "b="]) == {"a": "x=y", "b": ""}
    with pytest.raises(ConfigError, match="--params: oops: expected name=value"):
        parse_params(["oops"])
    with pytest.raises(ConfigError, match=r"defines: env, flag\)"):
        resolve_job_parameters("j", spec, {"nope": "1"})


def _report(*statuses: str) -> RunReport:
    report = RunReport(job="j", run_id="r", target="t", engine="sail")
    report.tasks = [TaskOutcome(f"t{i}", s) for i, s in enumerate(statuses)]
    return report


def test_would_notify_notes() -> None:
    spec = validate(Job, EVERY_KEY, "databricks.yml", "resources.jobs.j")
    assert would_notify(spec, "on_start") == [
        "would notify a@example.com by email (on_start; no mail sent locally)"
    ]
    assert end_notes(spec, _report("FAILED"), seconds=5) == [
        "would notify b@example.com by email (on_failure; no mail sent locally)",
        "would notify destination dest (on_failure; Databricks destinations are not called locally)",
    ]
    assert end_notes(spec, _report("SUCCESS"), seconds=61) == [
        "would notify a@example.com by email (on_success; no mail sent locally)",
        "would notify c@example.com by email (on_duration_warning_threshold_exceeded; no mail "
        "sent locally) (the run took 61s, over the 60s health threshold)",
    ]
    assert (
        end_notes(spec, _report("SKIPPED", "SKIPPED"), seconds=1) == []
    )  # no_alert_for_skipped_runs
    assert end_notes(job(), _report("FAILED"), seconds=1) == []
