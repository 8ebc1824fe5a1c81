"""Schedules: Quartz/cron next fire times, time zones, pauses, and the no-overlap scheduler."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lakehouse.bundle.schedule import (
    ScheduleError,
    Scheduler,
    bundle_run_launcher,
    next_fire,
)
from lakehouse.config.jobs import Schedule
from lakehouse.config.loader import load_project
from lakehouse.config.project import Project
from lakehouse.core.cron import quartz_to_croniter
from lakehouse.core.errors import ConfigError

WED = datetime(2026, 3, 4, 10, 0, 0, tzinfo=UTC)  # a Wednesday


def quartz(expr: str, tz: str = "UTC") -> Schedule:
    return Schedule(quartz_cron_expression=expr, timezone_id=tz)


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 0 2 * * ?", WED, datetime(2026, 3, 5, 2, 0, tzinfo=UTC)),
        (
            "0 0 2 * * ?",
            datetime(2026, 3, 4, 1, 59, 59, tzinfo=UTC),
            datetime(2026, 3, 4, 2, 0, tzinfo=UTC),
        ),
        ("0 15 10 ? * MON-FRI", WED, datetime(2026, 3, 4, 10, 15, tzinfo=UTC)),
        # Friday 10:15 has passed: the next weekday is Monday
        (
            "0 15 10 ? * MON-FRI",
            datetime(2026, 3, 6, 10, 15, tzinfo=UTC),
            datetime(2026, 3, 9, 10, 15, tzinfo=UTC),
        ),
        (
            "0 15 10 ? * 2-6",
            datetime(2026, 3, 6, 10, 15, tzinfo=UTC),
            datetime(2026, 3, 9, 10, 15, tzinfo=UTC),
        ),
        ("0 0 12 1 * ?", WED, datetime(2026, 4, 1, 12, 0, tzinfo=UTC)),
        ("0 0 12 ? * 1", WED, datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),  # 1 = Sunday
        ("0 0 12 ? * 7", WED, datetime(2026, 3, 7, 12, 0, tzinfo=UTC)),  # 7 = Saturday
        ("0 0 12 ? * 6L", WED, datetime(2026, 3, 27, 12, 0, tzinfo=UTC)),  # last Friday
        ("0 0 12 ? * 6#3", WED, datetime(2026, 3, 20, 12, 0, tzinfo=UTC)),  # third Friday
        ("0 0 12 L * ?", WED, datetime(2026, 3, 31, 12, 0, tzinfo=UTC)),  # last day of month
        ("0 30 6 15W * ?", WED, datetime(2026, 3, 16, 6, 30, tzinfo=UTC)),  # 15th is a Sunday
        ("0 0/20 * * * ?", WED, datetime(2026, 3, 4, 10, 20, tzinfo=UTC)),
        ("30 * * * * ?", WED, datetime(2026, 3, 4, 10, 0, 30, tzinfo=UTC)),
        ("0 0 0 1 1 ? 2030", WED, datetime(2030, 1, 1, 0, 0, tzinfo=UTC)),
        (
            "* * * * * ?",
            datetime(2026, 3, 4, 10, 0, 0, 400000, tzinfo=UTC),
            datetime(2026, 3, 4, 10, 0, 1, tzinfo=UTC),
        ),
    ],
)
def test_quartz_next_fire(expr: str, after: datetime, expected: datetime) -> None:
    assert next_fire(quartz(expr), after) == expected


def test_quartz_day_of_week_numbers_are_translated_to_cron() -> None:
    assert quartz_to_croniter("0 0 12 ? * 2-6/2") == "0 0 12 ? * 1-5/2"
    assert quartz_to_croniter("0 0 12 ? * 1,7") == "0 0 12 ? * 0,6"
    assert quartz_to_croniter("0 0 12 ? * MON-FRI") == "0 0 12 ? * MON-FRI"
    assert quartz_to_croniter("0 0 12 ? * FRI#2") == "0 0 12 ? * FRI#2"
    assert quartz_to_croniter("0 0 12 ? * L") == "0 0 12 ? * 6"


def test_five_field_cron_expression() -> None:
    schedule = Schedule(cron_expression="30 2 * * 1-5", timezone_id="UTC")  # cron: 1 = Monday
    assert next_fire(schedule, datetime(2026, 3, 6, 3, 0, tzinfo=UTC)) == datetime(
        2026, 3, 9, 2, 30, tzinfo=UTC
    )


def test_timezone_is_honoured_across_daylight_saving() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    schedule = quartz("0 0 2 * * ?", "Europe/Berlin")
    # winter: 02:00 CET is 01:00 UTC
    fire = next_fire(schedule, datetime(2026, 3, 4, 12, 0, tzinfo=UTC))
    assert fire == datetime(2026, 3, 5, 2, 0, tzinfo=berlin)
    assert fire.astimezone(UTC) == datetime(2026, 3, 5, 1, 0, tzinfo=UTC)
    # summer: 02:00 CEST is 00:00 UTC
    summer = next_fire(schedule, datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    assert summer.astimezone(UTC) == datetime(2026, 7, 2, 0, 0, tzinfo=UTC)
    # a naive "after" means UTC
    assert next_fire(schedule, datetime(2026, 3, 4, 12, 0)) == fire
    # 09:00 New York on a Monday, from a UTC instant on Sunday evening
    ny = quartz("0 0 9 ? * MON", "America/New_York")
    assert next_fire(ny, datetime(2026, 3, 8, 20, 0, tzinfo=UTC)).astimezone(UTC) == datetime(
        2026, 3, 9, 13, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 0 12 1 * MON", "give '?'"),
        ("0 0 12 ? * ?", "not both"),
        ("0 0 12 LW * ?", "not supported"),
        ("0 0 12 ? * 8", "expected 1-7"),
        ("0 0 12 * *", "6 or 7 fields"),
        ("0 0 25 * * ?", "not a valid expression"),
    ],
)
def test_bad_quartz_expressions_are_refused(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        next_fire(quartz(expr), WED)


# ---------------------------------------------------------------- the scheduler


def write_bundle(root: Path, jobs_yaml: str) -> Project:
    (root / "conf").mkdir(parents=True, exist_ok=True)
    (root / "conf" / "catalog.yml").write_text(
        "catalog:\n  name: lh\n  storage_root: ./data/tables\n"
    )
    (root / "bundle.yml").write_text(
        "bundle: {name: sched}\n"
        "include: [conf/*.yml]\n"
        "variables:\n  data_root: {default: ./data}\n"
        "targets:\n  local: {default: true}\n"
        "resources:\n  jobs:\n" + jobs_yaml
    )
    return load_project(root)


def job_yaml(name: str, schedule: str, *, paused: bool = False, max_runs: int = 1) -> str:
    return (
        f"    {name}:\n"
        f"      schedule: {{quartz_cron_expression: '{schedule}', timezone_id: UTC,"
        f" pause_status: {'PAUSED' if paused else 'UNPAUSED'}}}\n"
        f"      max_concurrent_runs: {max_runs}\n"
        f"      tasks: [{{task_key: t, python_function_task: {{function: 'os:getcwd'}}}}]\n"
    )


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.t = start

    def now(self) -> datetime:
        return self.t

    def monotonic(self) -> float:
        return self.t.timestamp()

    def sleep(self, seconds: float) -> None:
        self.t += timedelta(seconds=max(seconds, 0.001))


class FakeProcess:
    """Runs for ``seconds`` of the fake clock."""

    next_pid = 1000

    def __init__(self, clock: FakeClock, seconds: float, code: int = 0) -> None:
        self.clock, self.end, self.code = clock, clock.t + timedelta(seconds=seconds), code
        FakeProcess.next_pid += 1
        self.pid = FakeProcess.next_pid

    def poll(self) -> int | None:
        return self.code if self.clock.t >= self.end else None

    def wait(self, timeout: float | None = None) -> int:
        self.clock.t = max(self.clock.t, self.end)
        return self.code

    def terminate(self) -> None:
        self.end = self.clock.t

    def kill(self) -> None:
        self.end = self.clock.t


def test_scheduler_skips_fires_while_the_previous_run_is_going(tmp_path: Path) -> None:
    project = write_bundle(
        tmp_path,
        job_yaml("every_minute", "0 * * * * ?") + job_yaml("nightly", "0 0 2 * * ?", paused=True),
    )
    clock = FakeClock(datetime(2026, 3, 4, 10, 0, 30, tzinfo=UTC))
    launched: list[str] = []

    def launch(job: str) -> FakeProcess:
        launched.append(job)
        return FakeProcess(clock, seconds=150, code=len(launched) % 2)  # 2.5 minutes

    lines: list[str] = []
    scheduler = Scheduler(
        project,
        launch,
        echo=lines.append,
        now=clock.now,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    summary = scheduler.run(max_fires=6)
    # fires at 10:01 .. 10:06: runs start at 10:01 and 10:04 (each lasts 2.5 min)
    assert launched == ["every_minute", "every_minute"]
    assert (summary.fires, summary.started, summary.skipped) == (6, 2, 4)
    assert summary.finished == [("every_minute", 1, 1), ("every_minute", 2, 0)]
    started = [e.at.strftime("%H:%M:%S") for e in scheduler.events if e.kind == "started"]
    skipped = [e.at.strftime("%H:%M:%S") for e in scheduler.events if e.kind == "skipped"]
    assert started == ["10:01:00", "10:04:00"]
    assert skipped == ["10:02:00", "10:03:00", "10:05:00", "10:06:00"]
    assert "nightly: paused (quartz 0 0 2 * * ? UTC), not run" in lines[0] + lines[1]
    assert any("skipped: previous run still going (run 1, pid" in line for line in lines)
    assert lines[-1].endswith("every_minute: run 2 finished with exit code 0 after 150.0s")


def test_max_concurrent_runs_allows_overlap_up_to_the_limit(tmp_path: Path) -> None:
    project = write_bundle(tmp_path, job_yaml("j", "0 * * * * ?", max_runs=2))
    clock = FakeClock(datetime(2026, 3, 4, 10, 0, 30, tzinfo=UTC))
    scheduler = Scheduler(
        project,
        lambda job: FakeProcess(clock, seconds=150),
        echo=lambda line: None,
        now=clock.now,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    summary = scheduler.run(max_fires=4)
    # 10:01 start, 10:02 start (2 going), 10:03 skip, 10:04 start (run 1 ended 10:03:30)
    kinds = [e.kind for e in scheduler.events if e.kind in ("started", "skipped")]
    assert kinds == ["started", "started", "skipped", "started"]
    assert summary.started == 3


def test_a_launch_failure_is_reported_and_the_schedule_goes_on(tmp_path: Path) -> None:
    project = write_bundle(tmp_path, job_yaml("j", "0 * * * * ?"))
    clock = FakeClock(datetime(2026, 3, 4, 10, 0, 30, tzinfo=UTC))

    def launch(job: str) -> FakeProcess:
        raise FileNotFoundError("no such command: lakehouse")

    lines: list[str] = []
    summary = Scheduler(project, launch, echo=lines.append, now=clock.now, sleep=clock.sleep).run(
        max_fires=2
    )
    assert summary.failed_to_start == 2
    assert "j: run 1 could not start: no such command: lakehouse" in lines[1]


def test_ctrl_c_stops_launching_and_stops_the_running_run(tmp_path: Path) -> None:
    project = write_bundle(tmp_path, job_yaml("j", "0 * * * * ?"))
    clock = FakeClock(datetime(2026, 3, 4, 10, 0, 30, tzinfo=UTC))
    processes: list[FakeProcess] = []

    def launch(job: str) -> FakeProcess:
        processes.append(FakeProcess(clock, seconds=600, code=-15))
        return processes[-1]

    def sleep(seconds: float) -> None:
        if processes and not getattr(sleep, "interrupted", False):
            sleep.interrupted = True  # type: ignore[attr-defined]
            raise KeyboardInterrupt
        clock.sleep(seconds)

    lines: list[str] = []
    scheduler = Scheduler(
        project, launch, echo=lines.append, now=clock.now, sleep=sleep, monotonic=clock.monotonic
    )
    summary = scheduler.run()
    assert summary.interrupted
    assert (summary.started, summary.finished) == (1, [("j", 1, -15)])
    assert lines[-2].endswith("*: stopping: 1 run(s) still going")
    # a grace period first (the run got Ctrl-C too), then terminate()
    assert lines[-1].endswith("j: run 1 finished with exit code -15 after 10.0s")


def test_paused_only_bundle_has_nothing_to_run(tmp_path: Path) -> None:
    project = write_bundle(tmp_path, job_yaml("j", "0 * * * * ?", paused=True))
    with pytest.raises(ScheduleError, match="every scheduled job is paused"):
        Scheduler(project, lambda job: FakeProcess(FakeClock(WED), 1))


def test_unknown_or_unscheduled_job_is_an_error(tmp_path: Path) -> None:
    project = write_bundle(
        tmp_path,
        job_yaml("j", "0 * * * * ?")
        + "    adhoc:\n      tasks: [{task_key: t, python_function_task: {function: 'os:getcwd'}}]\n",
    )
    with pytest.raises(ConfigError, match="no such job"):
        Scheduler(project, lambda job: FakeProcess(FakeClock(WED), 1), job="nope")
    with pytest.raises(ScheduleError, match="job adhoc has no schedule"):
        Scheduler(project, lambda job: FakeProcess(FakeClock(WED), 1), job="adhoc")


def test_a_bad_expression_names_the_job(tmp_path: Path) -> None:
    # the project no longer loads: the expression is checked with the rest of bundle.yml
    with pytest.raises(ConfigError, match=r"resources\.jobs\.j\.schedule: give '\?'"):
        project = write_bundle(tmp_path, job_yaml("j", "0 0 12 1 * MON"))
        Scheduler(project, lambda job: FakeProcess(FakeClock(WED), 1))


RUN_SCRIPT = """
import sys, time
with open(sys.argv[1], "a") as f:
    f.write(f"start {time.time()}\\n")
time.sleep(float(sys.argv[2]))
with open(sys.argv[1], "a") as f:
    f.write(f"end {time.time()}\\n")
"""


def test_real_subprocesses_never_overlap(tmp_path: Path) -> None:
    """Every second, a run that takes 2.4 s: over 5 fires two runs start, three are skipped."""
    project = write_bundle(tmp_path, job_yaml("tick", "* * * * * ?"))
    trace = tmp_path / "trace.txt"

    def launch(job: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, str(trace), "2.4"])

    lines: list[str] = []
    began = time.monotonic()
    scheduler = Scheduler(project, launch, echo=lines.append, poll_interval_s=0.1)
    summary = scheduler.run(max_fires=5)
    elapsed = time.monotonic() - began
    assert (summary.started, summary.skipped) == (2, 3), lines
    assert [code for _, _, code in summary.finished] == [0, 0]
    # the runs' own clocks: each run ended before the next one started
    stamps = [line.split() for line in trace.read_text().splitlines()]
    assert [kind for kind, _ in stamps] == ["start", "end", "start", "end"]
    times = [float(t) for _, t in stamps]
    assert times == sorted(times)
    kinds = [e.kind for e in scheduler.events if e.kind in ("started", "skipped")]
    assert kinds == ["started", "skipped", "skipped", "started", "skipped"]
    assert any("skipped: previous run still going" in line for line in lines)
    assert elapsed < 10


def test_default_launcher_runs_lakehouse_bundle_run(tmp_path: Path) -> None:
    project = write_bundle(tmp_path, job_yaml("j", "0 * * * * ?"))
    fake_cli = tmp_path / "fake_cli.py"
    fake_cli.write_text("import sys; print(' '.join(sys.argv[1:]))\n")
    launch = bundle_run_launcher(
        project, var_overrides={"data_root": "/tmp/x"}, command=[sys.executable, str(fake_cli)]
    )
    process = launch("j")
    assert process.wait(timeout=30) == 0
    log_path = getattr(process, "log_path", None)
    assert log_path is not None
    assert log_path.parent == project.data_root / "logs"
    assert re.fullmatch(r"schedule-j-\d{8}T\d{6}-1\.log", log_path.name)
    assert log_path.read_text().strip() == (
        f"bundle run j --target local --project-dir {project.root} --var data_root=/tmp/x"
    )
