"""The one schedule-expression parser: load-time checks, and where the scheduler and the
exporters used to disagree (one parse now; each consumer refuses only what it cannot run)."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakehouse.bundle.export import ExportError, quartz_to_cron, schedule_cron, schedule_quartz
from lakehouse.bundle.schedule import next_fire
from lakehouse.config.jobs import Schedule
from lakehouse.config.loader import load_project
from lakehouse.core.cron import CronError, parse
from lakehouse.core.errors import ConfigError

WED = datetime(2026, 3, 4, 10, 0, 0, tzinfo=UTC)


def _bundle(root: Path, schedule: str) -> Path:
    (root / "conf").mkdir(parents=True, exist_ok=True)
    (root / "conf" / "catalog.yml").write_text(
        "catalog:\n  name: lh\n  storage_root: ./data/tables\n"
    )
    (root / "bundle.yml").write_text(
        "bundle: {name: cron}\ninclude: [conf/*.yml]\n"
        "variables:\n  data_root: {default: ./data}\n"
        "targets:\n  local: {default: true}\n"
        "resources:\n  jobs:\n    j:\n"
        f"      schedule: {{{schedule}, timezone_id: UTC}}\n"
        "      tasks: [{task_key: t, python_function_task: {function: 'os:getcwd'}}]\n"
    )
    return root


def test_an_invalid_expression_fails_when_the_project_loads(tmp_path: Path) -> None:
    root = _bundle(tmp_path, "quartz_cron_expression: '99 99 99 * * ?'")
    with pytest.raises(ConfigError) as err:
        load_project(root)
    assert str(err.value) == (
        "bundle.yml: resources.jobs.j.schedule: second 99 is outside 0-59 "
        "(quartz_cron_expression '99 99 99 * * ?' is not a valid expression)"
    )


def test_bundle_validate_names_file_key_and_reason(tmp_path: Path) -> None:
    root = _bundle(tmp_path, "cron_expression: '0 2 * * FUN'")
    result = subprocess.run(
        [sys.executable, "-m", "lakehouse", "bundle", "validate", "--project-dir", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert (
        "bundle.yml: resources.jobs.j.schedule: day-of-week value 'FUN' is not understood"
        in " ".join(result.stderr.split())
    )


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("0 0 12 ? * 6L", "day-of-week '6L' uses 'L', which 5-field cron cannot express"),
        ("0 0 12 ? * 6#3", "day-of-week '6#3' uses '#', which 5-field cron cannot express"),
        ("0 0 12 L * ?", "day-of-month 'L' uses 'L', which 5-field cron cannot express"),
        ("0 30 6 15W * ?", "day-of-month '15W' uses 'W', which 5-field cron cannot express"),
    ],
)
def test_the_scheduler_runs_l_hash_w_and_the_airflow_export_refuses_them(
    expr: str, why: str
) -> None:
    schedule = Schedule(quartz_cron_expression=expr)
    assert next_fire(schedule, WED) > WED  # the scheduler (croniter) runs it
    assert schedule_quartz(schedule) == expr  # Databricks takes Quartz as written
    with pytest.raises(ExportError) as err:
        schedule_cron(schedule)
    assert str(err.value) == f"Quartz cron expression {expr!r}: {why}"


def test_a_cron_macro_is_scheduled_too() -> None:
    """The scheduler used to refuse ``@daily`` (not 5 fields) that the exporters accepted."""
    daily = Schedule(cron_expression="@daily")
    assert next_fire(daily, WED) == datetime(2026, 3, 5, tzinfo=UTC)
    assert schedule_cron(daily) == "0 0 * * *"


def test_a_wrapping_day_range_is_scheduled_but_not_converted() -> None:
    fri_to_mon = Schedule(quartz_cron_expression="0 0 12 ? * FRI-MON")
    fires = [next_fire(fri_to_mon, datetime(2026, 3, d, 13, tzinfo=UTC)).day for d in (4, 6, 9)]
    assert fires == [6, 7, 13]  # after Wed: Fri; after Fri: Sat; after Mon: Fri
    with pytest.raises(ExportError, match="runs backwards"):
        quartz_to_cron("0 0 12 ? * FRI-MON")


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("0 0 12 ? * 0", "day-of-week 0 is outside 1-7 (expected 1-7 for SUN-SAT, or SUN..SAT)"),
        ("0 0 12 LW * ?", "day-of-month 'LW': 'LW' and 'L-n' are not supported"),
        ("0 0 12 ? * 2#6", "day-of-week '2#6': the week after '#' is 1-5"),
        ("0 0 12 ? * ?", "'?' may stand in day-of-month or day-of-week, not both"),
    ],
)
def test_one_message_for_the_scheduler_the_config_and_the_exporter(expr: str, why: str) -> None:
    with pytest.raises(CronError) as parsed:
        parse(expr, "quartz")
    assert parsed.value.why == why
    with pytest.raises(
        ValueError,
        match=re.escape(f"{why} (quartz_cron_expression {expr!r} is not a valid expression)"),
    ):
        Schedule(quartz_cron_expression=expr)
    with pytest.raises(ExportError, match=re.escape(f"Quartz cron expression {expr!r}: {why}")):
        quartz_to_cron(expr)
