"""``lakehouse schedule`` with DAB triggers: periodic, local file arrival, pauses and the
development-mode pause; driven by a fake clock as in test_schedule.py (files are real)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lakehouse.bundle.schedule import ScheduleError, Scheduler, development_pause
from lakehouse.config.loader import load_project
from lakehouse.config.project import Project
from lakehouse.core.errors import ConfigError
from tests.bundle.test_schedule import FakeClock, FakeProcess

START = datetime(2026, 3, 4, 10, 0, 0, tzinfo=UTC)
TASKS = "      tasks: [{task_key: t, python_function_task: {function: 'os:getcwd'}}]\n"


# Databricks' development-mode pause applies to a databricks.yml bundle
DEV_BUNDLE_FILE = "databricks.yml"


def write_bundle(
    root: Path, jobs_yaml: str, target: str = "{default: true}", file: str = "bundle.yml"
) -> Project:
    (root / "conf").mkdir(parents=True, exist_ok=True)
    (root / "conf" / "catalog.yml").write_text(
        "catalog:\n  name: lh\n  storage_root: ./data/tables\n"
    )
    for stale in ("bundle.yml", "databricks.yml"):
        (root / stale).unlink(missing_ok=True)
    (root / file).write_text(
        "bundle: {name: trig}\n"
        "include: [conf/*.yml]\n"
        "variables:\n  data_root: {default: ./data}\n"
        f"targets:\n  local: {target}\n"
        "resources:\n  jobs:\n" + jobs_yaml
    )
    return load_project(root)


def trigger_job(name: str, trigger: str, max_runs: int = 1) -> str:
    return f"    {name}:\n      trigger: {trigger}\n      max_concurrent_runs: {max_runs}\n" + TASKS


def scheduler(
    project: Project, clock: FakeClock, launched: list[str], seconds: float = 30, **kwargs: object
) -> Scheduler:
    def launch(job: str) -> FakeProcess:
        launched.append(job)
        return FakeProcess(clock, seconds=seconds)

    return Scheduler(
        project,
        launch,
        echo=lambda line: None,
        now=clock.now,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        **kwargs,  # type: ignore[arg-type]
    )


def started_at(s: Scheduler) -> list[str]:
    return [e.at.strftime("%d %H:%M:%S") for e in s.events if e.kind == "started"]


def test_periodic_fires_every_interval_from_the_last_start(tmp_path: Path) -> None:
    project = write_bundle(
        tmp_path, trigger_job("hourly", "{periodic: {interval: 2, unit: HOURS}}")
    )
    clock = FakeClock(START)
    launched: list[str] = []
    # never ran: the first start is at once, then every 2 hours from that start
    s = scheduler(project, clock, launched, last_start=lambda job: None)
    summary = s.run(max_fires=3)
    assert started_at(s) == ["04 10:00:00", "04 12:00:00", "04 14:00:00"]
    assert (summary.started, summary.skipped) == (3, 0)
    assert s.events[0].detail == "periodic every 2 HOURS, next run 2026-03-04 10:00:00 UTC"


def test_periodic_counts_from_the_recorded_last_start(tmp_path: Path) -> None:
    project = write_bundle(
        tmp_path,
        trigger_job("daily", "{periodic: {interval: 1, unit: DAYS}}")
        + trigger_job("weekly", "{periodic: {interval: 1, unit: WEEKS}}"),
    )
    clock = FakeClock(START)
    launched: list[str] = []
    last = {"daily": START - timedelta(hours=20), "weekly": START - timedelta(days=30)}
    s = scheduler(project, clock, launched, last_start=last.get)
    s.run(max_fires=3)
    # weekly is overdue: at once; daily: 24 h after its last start; weekly again a week later
    by_job = [(e.job, e.at.strftime("%d %H:%M")) for e in s.events if e.kind == "started"]
    assert by_job == [("weekly", "04 10:00"), ("daily", "04 14:00"), ("daily", "05 14:00")]


def test_periodic_uses_the_run_log_by_default(tmp_path: Path) -> None:
    from lakehouse.bundle.runlog import RunLog

    project = write_bundle(tmp_path, trigger_job("j", "{periodic: {interval: 1, unit: HOURS}}"))
    RunLog(project.data_root).start("r1", "j")  # started now (real time)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    s = scheduler(project, clock, [])
    first = s.entries[0].next_fire
    assert timedelta(minutes=59) < first - clock.t <= timedelta(hours=1)


def test_a_periodic_fire_while_the_run_is_going_is_skipped(tmp_path: Path) -> None:
    project = write_bundle(tmp_path, trigger_job("j", "{periodic: {interval: 1, unit: HOURS}}"))
    clock = FakeClock(START)
    launched: list[str] = []
    s = scheduler(project, clock, launched, seconds=90 * 60, last_start=lambda job: None)
    summary = s.run(max_fires=4)
    # 10:00 start (90 min), 11:00 skipped, 12:00 start, 13:00 skipped
    assert started_at(s) == ["04 10:00:00", "04 12:00:00"]
    assert (summary.started, summary.skipped) == (2, 2)


def test_file_arrival_starts_on_new_files_once_they_settle(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "old.csv").write_text("a\n")  # there before the scheduler: no trigger
    project = write_bundle(
        tmp_path,
        trigger_job(
            "on_files",
            "{file_arrival: {url: ./landing, wait_after_last_change_seconds: 60,"
            " min_time_between_triggers_seconds: 600}}",
        ),
    )
    clock = FakeClock(START)
    launched: list[str] = []
    s = scheduler(project, clock, launched, file_poll_s=10)
    s.run(until=START + timedelta(minutes=5))
    assert launched == []
    (landing / "new.csv").write_text("b\n")
    s.run(until=START + timedelta(minutes=5, seconds=50))
    assert launched == []  # changed 40-50 s ago: not settled yet
    (landing / "new.csv").write_text("b\nc\n")  # still being written: the wait starts again
    s.run(until=START + timedelta(minutes=6, seconds=40))
    assert launched == []
    s.run(until=START + timedelta(minutes=7, seconds=10))
    assert launched == ["on_files"]
    started = [e for e in s.events if e.kind == "started"]
    assert started[0].detail == "1 new or changed file: new.csv"
    # the rewrite was seen by the poll at 10:05:50: 60 s later it has settled
    assert started[0].at == START + timedelta(minutes=6, seconds=50)
    # more files 2 minutes later: the 10-minute gap between starts holds them back
    (landing / "sub").mkdir()
    (landing / "sub" / "x.json").write_text("{}")
    (landing / ".hidden").write_text("x")
    (landing / "old.csv").unlink()  # removed: no trigger of its own
    s.run(until=START + timedelta(minutes=16, seconds=45))
    assert launched == ["on_files"]
    s.run(until=START + timedelta(minutes=17, seconds=10))
    assert launched == ["on_files", "on_files"]
    assert [e.detail for e in s.events if e.kind == "started"][1] == (
        "1 new or changed file: sub/x.json"
    )
    assert [e.kind for e in s.events].count("skipped") == 0


def test_file_arrival_waits_for_a_free_run_slot(tmp_path: Path) -> None:
    landing = tmp_path / "in"
    project = write_bundle(
        tmp_path, trigger_job("j", f"{{file_arrival: {{url: 'file://{landing}'}}}}")
    )
    clock = FakeClock(START)
    launched: list[str] = []
    s = scheduler(project, clock, launched, seconds=300, file_poll_s=5)
    landing.mkdir()  # the directory may appear later
    (landing / "a").write_text("1")
    s.run(until=START + timedelta(seconds=20))
    assert launched == ["j"]
    (landing / "b").write_text("2")  # arrives while run 1 is going: waits, is not skipped
    s.run(until=START + timedelta(seconds=290))
    assert launched == ["j"]
    s.run(until=START + timedelta(seconds=330))
    assert launched == ["j", "j"]
    assert [e.kind for e in s.events].count("skipped") == 0


def test_paused_triggers_and_databricks_only_triggers_are_not_run(tmp_path: Path) -> None:
    project = write_bundle(
        tmp_path,
        trigger_job("p", "{pause_status: PAUSED, periodic: {interval: 1, unit: HOURS}}")
        + trigger_job("t", "{table_update: {table_names: [main.sales.orders]}}")
        + trigger_job("s3", "{file_arrival: {url: 's3://bucket/landing/'}}")
        + "    always:\n      continuous: {pause_status: UNPAUSED}\n"
        + TASKS,
    )
    lines: list[str] = []
    with pytest.raises(ScheduleError, match="every scheduled job is paused or not run locally"):
        Scheduler(project, lambda job: FakeProcess(FakeClock(START), 1), echo=lines.append)
    assert any(line.endswith("p: paused (periodic every 1 HOURS), not run") for line in lines)
    assert any(
        line.endswith("t: not run locally (table update of main.sales.orders: Databricks only)")
        for line in lines
    )
    assert any(
        "s3: not run locally (file arrival in s3://bucket/landing/" in line for line in lines
    )
    assert any(
        line.endswith("always: not run locally (continuous: Databricks only)") for line in lines
    )


def test_a_development_target_pauses_schedules_and_triggers(tmp_path: Path) -> None:
    jobs = (
        trigger_job("p", "{periodic: {interval: 1, unit: HOURS}}")
        + "    cron:\n      schedule: {quartz_cron_expression: '0 * * * * ?'}\n"
        + TASKS
    )
    project = write_bundle(
        tmp_path, jobs, target="{default: true, mode: development}", file=DEV_BUNDLE_FILE
    )
    assert development_pause(project) == (
        "target local is in development mode; presets.trigger_pause_status: UNPAUSED runs it"
    )
    lines: list[str] = []
    with pytest.raises(ScheduleError, match="nothing to run: target local is in development"):
        Scheduler(project, lambda job: FakeProcess(FakeClock(START), 1), echo=lines.append)
    assert sum("paused (" in line and "development mode" in line for line in lines) == 2
    # production, or no mode at all: not paused
    for target in ("{default: true, mode: production}", "{default: true}"):
        assert development_pause(write_bundle(tmp_path, jobs, target, DEV_BUNDLE_FILE)) is None


def test_development_mode_keeps_an_explicitly_unpaused_trigger(tmp_path: Path) -> None:
    jobs = trigger_job("own", "{pause_status: UNPAUSED, periodic: {interval: 1, unit: HOURS}}")
    jobs += trigger_job("inherits", "{periodic: {interval: 1, unit: HOURS}}")
    project = write_bundle(
        tmp_path, jobs, target="{default: true, mode: development}", file=DEV_BUNDLE_FILE
    )
    launched: list[str] = []
    s = scheduler(project, FakeClock(START), launched, last_start=lambda job: None)
    assert [e.name for e in s.entries] == ["own"]
    assert s.paused == ["inherits"]
    s.run(max_fires=1)
    assert launched == ["own"]


def test_with_the_dab_loader_the_schedules_pause_status_decides(tmp_path: Path) -> None:
    """The Databricks bundle loader sets pause_status: PAUSED itself on
    what sets none and says so with ``project.schedules_paused``: only explained here."""
    jobs = trigger_job("paused", "{pause_status: PAUSED, periodic: {interval: 1, unit: HOURS}}")
    jobs += trigger_job("own", "{pause_status: UNPAUSED, periodic: {interval: 1, unit: HOURS}}")
    dev = "{default: true, mode: development}"
    project = write_bundle(tmp_path, jobs, dev, DEV_BUNDLE_FILE)
    lines: list[str] = []
    s = Scheduler(
        project,
        lambda job: FakeProcess(FakeClock(START), 1),
        echo=lines.append,
        last_start=lambda job: None,
    )
    assert [e.name for e in s.entries] == ["own"]
    assert any(
        line.endswith(
            "paused: paused (periodic every 1 HOURS, target local is in development mode; "
            "presets.trigger_pause_status: UNPAUSED runs it), not run"
        )
        for line in lines
    ), lines
    project = write_bundle(tmp_path, jobs, "{default: true, mode: production}", DEV_BUNDLE_FILE)
    assert development_pause(project) is None


def test_schedule_trigger_and_continuous_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at most one of 'schedule', 'trigger', 'continuous'"):
        write_bundle(
            tmp_path,
            "    j:\n      schedule: {quartz_cron_expression: '0 * * * * ?'}\n"
            "      trigger: {periodic: {interval: 1, unit: HOURS}}\n" + TASKS,
        )
    with pytest.raises(ConfigError, match=r"trigger: .*exactly one of 'periodic'"):
        write_bundle(tmp_path, trigger_job("j", "{pause_status: PAUSED}"))
    with pytest.raises(ConfigError, match=r"trigger\.periodic\.unit"):
        write_bundle(tmp_path, trigger_job("j", "{periodic: {interval: 1, unit: MINUTES}}"))


RUN_SCRIPT = """
import os, sys
with open(sys.argv[1], "a") as f:
    f.write(" ".join(sorted(os.listdir(sys.argv[2]))) + "\\n")
"""


def test_real_runs_start_when_real_files_land(tmp_path: Path) -> None:
    """Real time and real subprocesses: a file lands, a run starts and sees it."""
    landing = tmp_path / "landing"
    landing.mkdir()
    project = write_bundle(tmp_path, trigger_job("j", "{file_arrival: {url: ./landing}}"))
    trace = tmp_path / "trace.txt"

    def launch(job: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, str(trace), str(landing)])

    s = Scheduler(project, launch, echo=lambda line: None, poll_interval_s=0.05, file_poll_s=0.1)
    began = time.monotonic()
    (landing / "one.csv").write_text("x")
    s.run(max_fires=1)
    (landing / "two.csv").write_text("y")
    os.utime(landing / "one.csv")  # touched: changed too
    s.run(max_fires=2)
    assert trace.read_text().splitlines() == ["one.csv", "one.csv two.csv"]
    assert [code for _, _, code in s.summary.finished] == [0, 0]
    assert time.monotonic() - began < 10
