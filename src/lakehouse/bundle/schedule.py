"""Run the bundle's job schedules and triggers in a foreground process (``lakehouse schedule``).

Besides a cron ``schedule``, a job's ``trigger.periodic`` and a local ``trigger.file_arrival``
start it (see :mod:`lakehouse.bundle.triggers`). ``pause_status: PAUSED`` on a schedule or
trigger is honoured, and, as Databricks Asset Bundles do, a target with ``mode:
development`` pauses every schedule and trigger unless the target's
``presets.trigger_pause_status`` is ``UNPAUSED``.

Schedules are Databricks-style: a Quartz cron expression (``sec min hour day-of-month month
day-of-week [year]``) or a 5-field cron expression, a ``timezone_id`` and a
``pause_status``. Expressions are parsed and checked by :mod:`lakehouse.core.cron` (when
the project loads) and evaluated by croniter; see there for the Quartz rules.

A fire time that falls into a daylight-saving gap fires at the first instant after the gap.

The scheduler never starts a job while ``max_concurrent_runs`` runs of it (default 1) are
still going: that fire is skipped and reported. Fires missed while the process was not
running (or asleep) are not caught up. Each run is a subprocess, by default
``lakehouse bundle run JOB --target T --project-dir ROOT``; tests pass their own launcher,
clock and sleep.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from croniter import croniter  # type: ignore[import-untyped]

from lakehouse.bundle.triggers import (
    DEFAULT_POLL_S,
    FileArrivalTimer,
    PeriodicTimer,
    Timer,
    describe_trigger,
    local_directory,
)
from lakehouse.config.job_settings import Trigger
from lakehouse.config.jobs import Job, Schedule
from lakehouse.config.project import Project
from lakehouse.core.cron import parse_schedule
from lakehouse.core.errors import ConfigError, LakehouseError, one_line

MAX_SLEEP_S = 30.0  # wake up at least this often (clock changes, Ctrl-C responsiveness)
STOP_GRACE_S = 10.0


class ScheduleError(LakehouseError):
    """Nothing can be scheduled (no schedule, all paused, unknown job)."""


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class CompiledSchedule:
    """A schedule ready to evaluate: croniter expression, seconds-first flag and zone."""

    expression: str
    seconds_first: bool
    zone: ZoneInfo
    source: str

    def next_after(self, after: datetime) -> datetime:
        """The first fire time strictly after ``after`` (aware, in the schedule's zone)."""
        if after.tzinfo is None:
            after = after.replace(tzinfo=UTC)
        start = after.astimezone(self.zone)
        fire: datetime = croniter(
            self.expression, start, ret_type=datetime, second_at_beginning=self.seconds_first
        ).get_next(datetime)
        return fire.astimezone(self.zone)


def compile_schedule(schedule: Schedule) -> CompiledSchedule:
    """Check and translate a bundle schedule; a bad expression raises ``ValueError``."""
    parsed = parse_schedule(schedule.quartz_cron_expression, schedule.cron_expression)
    expression, seconds_first = parsed.croniter_expression()
    return CompiledSchedule(
        expression, seconds_first, ZoneInfo(schedule.timezone_id), parsed.source
    )


def next_fire(schedule: Schedule, after: datetime) -> datetime:
    """The schedule's first fire time strictly after ``after`` (naive means UTC)."""
    return compile_schedule(schedule).next_after(after)


def describe(schedule: Schedule) -> str:
    """``quartz 0 0 2 * * ? UTC`` / ``cron 0 2 * * * Europe/Berlin``."""
    if schedule.quartz_cron_expression is not None:
        return f"quartz {schedule.quartz_cron_expression} {schedule.timezone_id}"
    return f"cron {schedule.cron_expression} {schedule.timezone_id}"


@dataclass
class CronTimer:
    """A cron ``schedule`` as a scheduler timer."""

    compiled: CompiledSchedule
    description: str

    @property
    def zone(self) -> ZoneInfo:
        return self.compiled.zone

    def first(self, start: datetime) -> datetime:
        return self.compiled.next_after(start)

    def ready(self, now: datetime) -> bool:
        return True

    def fired(self, now: datetime) -> str:
        return ""

    def next_after(self, fire: datetime, now: datetime) -> datetime:
        return self.compiled.next_after(max(now, fire))


# ---------------------------------------------------------------- the scheduler


class Process(Protocol):
    """What a launcher returns: ``subprocess.Popen`` or anything that quacks like it."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


Launcher = Callable[[str], Process]
EventKind = Literal[
    "scheduled",
    "paused",
    "not_run",
    "started",
    "skipped",
    "finished",
    "failed_to_start",
    "stopping",
]


@dataclass(frozen=True)
class ScheduleEvent:
    kind: EventKind
    job: str
    at: datetime
    run: int = 0
    pid: int | None = None
    exit_code: int | None = None
    detail: str = ""


@dataclass
class _Run:
    number: int
    process: Process
    started: float  # time.monotonic()


@dataclass
class _Entry:
    name: str
    job: Job
    timer: Timer
    next_fire: datetime
    runs: list[_Run] = field(default_factory=list)

    @property
    def waits_for_files(self) -> bool:
        return isinstance(self.timer, FileArrivalTimer)


@dataclass
class ScheduleSummary:
    fires: int = 0
    started: int = 0
    skipped: int = 0
    failed_to_start: int = 0
    finished: list[tuple[str, int, int]] = field(default_factory=list)  # job, run, exit code
    interrupted: bool = False


def _starts(job: Job) -> bool:
    return job.schedule is not None or job.trigger is not None or job.continuous is not None


def scheduled_jobs(project: Project, job: str | None = None) -> dict[str, Job]:
    """Jobs with a schedule or trigger (only ``job`` when named); raises when there are none."""
    jobs = project.bundle.resources.jobs
    if job is not None:
        if job not in jobs:
            raise ConfigError(
                "bundle.yml",
                f"resources.jobs.{job}",
                f"no such job (defined: {', '.join(jobs) or 'none'})",
            )
        if not _starts(jobs[job]):
            raise ScheduleError(
                f"job {job} has no schedule or trigger (resources.jobs.{job}.schedule or .trigger)"
            )
        return {job: jobs[job]}
    found = {name: j for name, j in jobs.items() if _starts(j)}
    if not found:
        raise ScheduleError(
            "no job in bundle.yml has a schedule or trigger "
            "(resources.jobs.<job>.schedule or .trigger)"
        )
    return found


def development_pause(project: Project) -> str | None:
    """Why the target pauses the schedules and triggers that set no ``pause_status`` of
    their own (Databricks' ``mode: development``, or ``presets.trigger_pause_status:
    PAUSED``), or None. The loader has already set ``pause_status: PAUSED`` on each of those
    (``project.schedules_paused``): this only explains it."""
    if not project.schedules_paused:
        return None
    if project.target.mode == "development":
        return (
            f"target {project.target_name} is in development mode; "
            "presets.trigger_pause_status: UNPAUSED runs it"
        )
    return f"target {project.target_name} sets presets.trigger_pause_status: PAUSED"


def _own_pause_status(source: Schedule | Trigger | None) -> bool:
    """Whether the schedule or trigger sets its ``pause_status`` itself."""
    return source is not None and "pause_status" in source.model_fields_set


def last_recorded_start(project: Project) -> Callable[[str], datetime | None]:
    """The job's latest start in the run log under the data root (None: never ran)."""

    def last(job: str) -> datetime | None:
        from lakehouse.bundle.runlog import RunLog

        starts = [e.started for e in RunLog(project.data_root).entries(job).values()]
        if not starts:
            return None
        return datetime.fromisoformat(max(starts)).replace(tzinfo=UTC)

    return last


class Scheduler:
    """Fire each unpaused scheduled job at its times, one subprocess per run."""

    def __init__(
        self,
        project: Project,
        launch: Launcher,
        *,
        job: str | None = None,
        echo: Callable[[str], None] = print,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        poll_interval_s: float = 0.2,
        file_poll_s: float = DEFAULT_POLL_S,
        last_start: Callable[[str], datetime | None] | None = None,
    ) -> None:
        self.project = project
        self.launch = launch
        self.echo = echo
        self.now = now or (lambda: datetime.now(UTC))
        self.sleep = sleep
        self.monotonic = monotonic
        self.poll_interval_s = poll_interval_s
        self.file_poll_s = file_poll_s
        self.last_start = last_start or last_recorded_start(project)
        self.events: list[ScheduleEvent] = []
        self.summary = ScheduleSummary()
        self._runs_started: dict[str, int] = {}
        self.entries: list[_Entry] = []
        self.paused: list[str] = []
        self._zones: dict[str, ZoneInfo] = {}  # event times are shown in the job's zone
        start = self.now()
        dev_pause = development_pause(project)
        for name, spec in scheduled_jobs(project, job).items():
            timer = self._timer(name, spec, start)
            if timer is None:
                continue
            self._zones[name] = timer.zone
            source = spec.schedule if spec.schedule is not None else spec.trigger
            paused = source is not None and source.pause_status == "PAUSED"
            # the target's pause applies to what sets no pause_status of its own
            by_target = dev_pause is not None and (paused or not _own_pause_status(source))
            if paused or by_target:
                self.paused.append(name)
                why = timer.description + (f", {dev_pause}" if by_target else "")
                self._event("paused", name, start, detail=why)
                continue
            entry = _Entry(name, spec, timer, timer.first(start))
            self.entries.append(entry)
            when = (
                "watching"
                if entry.waits_for_files
                else f"next run {_stamp(entry.next_fire.astimezone(timer.zone))}"
            )
            self._event("scheduled", name, start, detail=f"{timer.description}, {when}")
        if not self.entries:
            if dev_pause and self.paused:
                raise ScheduleError(
                    f"nothing to run: {dev_pause} (paused: {', '.join(self.paused)})"
                )
            raise ScheduleError(
                "nothing to run: every scheduled job is paused or not run locally "
                f"({', '.join(self.paused) or 'none paused'})"
            )

    def _timer(self, name: str, spec: Job, start: datetime) -> Timer | None:
        """The job's timer, or None (reported) for a trigger that does not run locally."""
        if spec.schedule is not None:
            try:
                compiled = compile_schedule(spec.schedule)
            except ValueError as exc:
                raise ConfigError(
                    "bundle.yml", f"resources.jobs.{name}.schedule", str(exc)
                ) from None
            return CronTimer(compiled, describe(spec.schedule))
        trigger = spec.trigger
        if trigger is None:  # continuous: Databricks keeps a run going
            self._event("not_run", name, start, detail="continuous: Databricks only")
            return None
        if trigger.periodic is not None:
            last = self.last_start(name)
            return PeriodicTimer(trigger.periodic, last)
        if trigger.file_arrival is not None:
            directory = local_directory(trigger.file_arrival.url, self.project.resolve_path)
            if directory is not None:
                return FileArrivalTimer(
                    trigger.file_arrival, directory, start, poll_s=self.file_poll_s
                )
        why = describe_trigger(trigger)
        self._event("not_run", name, start, detail=f"{why}: Databricks only")
        return None

    # -- the loop

    def run(
        self, *, max_fires: int | None = None, until: datetime | None = None
    ) -> ScheduleSummary:
        """Fire jobs until ``max_fires`` fires, ``until`` or Ctrl-C; then wait for running runs."""
        try:
            while not self._done(max_fires, until):
                self._reap()
                current = self.now()
                for entry in sorted(self.entries, key=lambda e: e.next_fire):
                    if entry.next_fire > current or self._done(max_fires, until):
                        continue
                    if self._ready(entry, current):
                        fire = current if entry.waits_for_files else entry.next_fire
                        self._fire(entry, fire, entry.timer.fired(current))
                    entry.next_fire = entry.timer.next_after(entry.next_fire, current)
                if self._done(max_fires, until):
                    break
                self.sleep(self._delay(until))
            self._wait_all()
        except KeyboardInterrupt:
            self.summary.interrupted = True
            self._stop_all()
        return self.summary

    def _done(self, max_fires: int | None, until: datetime | None) -> bool:
        if max_fires is not None and self.summary.fires >= max_fires:
            return True
        return until is not None and self.now() >= until

    def _ready(self, entry: _Entry, current: datetime) -> bool:
        """Whether the entry starts now: always at a fire time; for files, when new files
        settled and a run slot is free (new files wait for a free slot, they are not skipped)."""
        if entry.waits_for_files:
            going = [r for r in entry.runs if r.process.poll() is None]
            if len(going) >= entry.job.max_concurrent_runs:
                return False
        return entry.timer.ready(current)

    def _delay(self, until: datetime | None) -> float:
        wake = min(e.next_fire for e in self.entries)
        if until is not None:
            wake = min(wake, until)
        delay = (wake - self.now()).total_seconds()
        if self._running():
            delay = min(delay, self.poll_interval_s)
        return max(0.0, min(delay, MAX_SLEEP_S))

    def _fire(self, entry: _Entry, fire_time: datetime, why: str = "") -> None:
        self.summary.fires += 1
        going = [r for r in entry.runs if r.process.poll() is None]
        if len(going) >= entry.job.max_concurrent_runs:
            self.summary.skipped += 1
            pids = ", ".join(str(r.process.pid) for r in going)
            what = (
                "previous run still going" if len(going) == 1 else f"{len(going)} runs still going"
            )
            self._event(
                "skipped",
                entry.name,
                fire_time,
                run=going[-1].number,
                pid=going[-1].process.pid,
                detail=f"{what} (run {', '.join(str(r.number) for r in going)}, pid {pids})",
            )
            return
        number = self._runs_started.get(entry.name, 0) + 1
        self._runs_started[entry.name] = number
        try:
            process = self.launch(entry.name)
        except Exception as exc:  # a launch failure is reported; the schedule goes on
            self.summary.failed_to_start += 1
            self._event(
                "failed_to_start",
                entry.name,
                fire_time,
                run=number,
                detail=one_line(exc, with_type=False),
            )
            return
        entry.runs.append(_Run(number, process, self.monotonic()))
        self.summary.started += 1
        log_path = getattr(process, "log_path", None)
        details = [why] if why else []
        details += [f"log: {log_path}"] if log_path else []
        self._event(
            "started",
            entry.name,
            fire_time,
            run=number,
            pid=process.pid,
            detail=", ".join(details),
        )

    def _reap(self) -> None:
        for entry in self.entries:
            for run in list(entry.runs):
                code = run.process.poll()
                if code is None:
                    continue
                entry.runs.remove(run)
                self.summary.finished.append((entry.name, run.number, code))
                self._event(
                    "finished",
                    entry.name,
                    self.now(),
                    run=run.number,
                    pid=run.process.pid,
                    exit_code=code,
                    detail=f"after {self.monotonic() - run.started:.1f}s",
                )

    def _running(self) -> list[_Run]:
        return [r for e in self.entries for r in e.runs]

    def _wait_all(self) -> None:
        while self._running():
            self._reap()
            if self._running():
                self.sleep(self.poll_interval_s)

    def _stop_all(self) -> None:
        """After Ctrl-C: give running runs a grace period (they got SIGINT too), then stop them."""
        running = self._running()
        if not running:
            return
        self._event("stopping", "*", self.now(), detail=f"{len(running)} run(s) still going")
        for sig_stop in (None, "terminate", "kill"):
            for run in self._running():
                if sig_stop is not None and run.process.poll() is None:
                    getattr(run.process, sig_stop)()
            deadline = self.monotonic() + STOP_GRACE_S
            while self._running() and self.monotonic() < deadline:
                self._reap()
                if self._running():
                    self.sleep(self.poll_interval_s)
            if not self._running():
                return

    def _event(self, kind: EventKind, job: str, at: datetime, **kwargs: Any) -> None:
        if job in self._zones:
            at = at.astimezone(self._zones[job])
        event = ScheduleEvent(kind, job, at, **kwargs)
        self.events.append(event)
        self.echo(format_event(event))


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def format_event(event: ScheduleEvent) -> str:
    """One line per event: ``<time> <job>: started run 2 (pid 123)``."""
    head = f"{_stamp(event.at)} {event.job}:"
    if event.kind == "scheduled":
        return f"{head} scheduled ({event.detail})"
    if event.kind == "paused":
        return f"{head} paused ({event.detail}), not run"
    if event.kind == "not_run":
        return f"{head} not run locally ({event.detail})"
    if event.kind == "started":
        extra = f", {event.detail}" if event.detail else ""
        return f"{head} started run {event.run} (pid {event.pid}{extra})"
    if event.kind == "skipped":
        return f"{head} skipped: {event.detail}"
    if event.kind == "finished":
        return f"{head} run {event.run} finished with exit code {event.exit_code} {event.detail}"
    if event.kind == "failed_to_start":
        return f"{head} run {event.run} could not start: {event.detail}"
    return f"{head} stopping: {event.detail}"


# ---------------------------------------------------------------- the default launcher


class LoggedPopen(subprocess.Popen[bytes]):
    """A Popen that remembers where its output goes."""

    log_path: Path | None = None


def bundle_run_launcher(
    project: Project,
    *,
    var_overrides: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    command: list[str] | None = None,
) -> Launcher:
    """Launch ``lakehouse bundle run JOB --target T --project-dir ROOT [--var ...]``.

    Output goes to ``<log_dir>/schedule-<job>-<time>-<n>.log`` (default ``<data_root>/logs``;
    ``n`` counts this scheduler's launches).
    The run stays in this process group, so Ctrl-C in the terminal reaches it too.
    """
    base = command or [sys.executable, "-m", "lakehouse"]
    directory = log_dir or project.data_root / "logs"
    launches = itertools.count(1)

    def launch(job: str) -> Process:
        argv = [
            *base,
            "bundle",
            "run",
            job,
            "--target",
            project.target_name,
            "--project-dir",
            str(project.root),
        ]
        for name, value in (var_overrides or {}).items():
            argv += ["--var", f"{name}={value}"]
        directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        log_path = directory / f"schedule-{job}-{stamp}-{next(launches)}.log"
        with log_path.open("ab") as log:
            process = LoggedPopen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=project.root,
            )
        process.log_path = log_path
        return process

    return launch
