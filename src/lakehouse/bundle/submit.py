"""Run one bundle task with ``spark-submit`` (the ``spark`` engine's way to run a task).

The command line is the one a person would type (docs/running.md, "Running the steps with
spark-submit"): the pyspark wheel's ``spark-submit``, the target's master and conf, the
Delta jars or packages the target names, then the task's ``jobs/`` script and parameters.
It is printed before it runs; its output goes to a log file under ``<data_root>/logs``.

* A script that calls :func:`lakehouse.bundle.entrypoint.run_task_script` (every ``jobs/``
  entry point) also gets ``--target``, ``--project-dir``, ``--job``, ``--run-id`` (and the
  ``--var`` overrides), so it loads the same bundle and records the same run. Any other
  script gets exactly its ``parameters``, as ``spark-submit script.py ARGS`` would pass them.
* Delta (:func:`lakehouse.engine.delta_classpath`): ``--jars`` with the jars of
  ``engine.delta.jars_dir`` / ``$LAKEHOUSE_DELTA_JARS``, else ``--packages`` with
  ``engine.delta.packages`` (default: delta-spark matching the installed wheel), with the
  Delta SQL extension and catalog. With ``packages: []`` a plain PySpark script runs as it
  is and a lakehouse entry point stops with a one-line message saying how to provide the jars.
* ``engine.conf`` wins over every ``--conf`` this module sets (Python interpreter, warehouse);
  the ``--conf`` of :class:`SubmitOptions` win over ``engine.conf``.
* :class:`SubmitOptions` (``lakehouse bundle submit``) renders the line for a cluster the
  project is not on: master, deploy mode, ``--py-files``, the project's directory where the
  driver runs (``local://`` scripts). For ``yarn`` and ``k8s://`` masters the line does not
  name this machine's Python interpreter.
* A ``python_function_task`` cannot be submitted yet: it is refused with a clear error.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import urlparse

from lakehouse.config.bundle_spec import EngineSpec
from lakehouse.config.jobs import Task
from lakehouse.config.project import Project
from lakehouse.core.errors import ConfigError, EngineError, TaskError
from lakehouse.engine import (
    DELTA_CATALOG,
    DELTA_EXTENSION,
    PORTABLE_PARQUET_CONF,
    delta_classpath,
    local_mode_conf,
)

ENTRYPOINT_MARKER = re.compile(r"\brun_task_script\b")
KILL_GRACE_S = 10.0


@dataclass(frozen=True)
class SubmitResult:
    """How one ``spark-submit`` run ended."""

    returncode: int
    command: list[str]
    log_path: Path
    timed_out: bool
    seconds: float

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def error(self) -> str:
        """One line for a failed run: why, the most telling log line, and where the log is."""
        if self.timed_out:
            return f"timed out after {self.seconds:.0f}s (log: {self.log_path})"
        if self.succeeded:
            return ""
        return f"spark-submit exited {self.returncode}: {_telling_line(self.log_path)} (log: {self.log_path})"


def spark_submit_executable() -> str:
    """``spark-submit`` of the installed pyspark wheel (its Spark matches the Python API)."""
    import pyspark

    wheel = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    if wheel.is_file():
        return str(wheel)
    found = shutil.which("spark-submit")
    if found:
        return found
    raise EngineError("spark-submit not found: install pyspark or put Spark's bin/ on PATH")


def is_lakehouse_entrypoint(script: Path) -> bool:
    """True for a script that runs its task through ``run_task_script`` (accepts --target etc.)."""
    try:
        return bool(ENTRYPOINT_MARKER.search(script.read_text(errors="replace")))
    except OSError:
        return False


@dataclass(frozen=True)
class SubmitOptions:
    """Where and how to submit beyond what the target says (``lakehouse bundle submit``).

    ``project_dir`` is the project's directory as the driver sees it (a path in the image on
    Kubernetes, a path every YARN node has): the script becomes ``local:<dir>/jobs/...`` and
    the entry point gets ``--project-dir <dir>``. Without it the paths are this machine's.
    """

    master: str | None = None
    deploy_mode: Literal["client", "cluster"] | None = None
    conf: tuple[tuple[str, str], ...] = ()
    py_files: tuple[str, ...] = ()
    project_dir: str | None = None
    spark_submit: str | None = None


def spark_submit_command(
    project: Project,
    job_name: str,
    task: Task,
    run_id: str,
    *,
    var_overrides: Mapping[str, str] | None = None,
    options: SubmitOptions | None = None,
) -> list[str]:
    """The ``spark-submit`` command line that runs ``task`` of ``job_name`` on the target."""
    options = options or SubmitOptions()
    script = _task_script(project, job_name, task)
    spec = project.engine
    master = options.master or spec.master
    command = [
        options.spark_submit or spark_submit_executable(),
        "--master",
        master,
        *(["--deploy-mode", options.deploy_mode] if options.deploy_mode else []),
        "--name",
        f"{project.name}:{job_name}:{task.task_key}",
        *(["--py-files", ",".join(options.py_files)] if options.py_files else []),
    ]
    command += _delta_options(spec)
    for key, value in _submit_conf(project, spec, master, options).items():
        command += ["--conf", f"{key}={value}"]
    where = _Where(project.root, options.project_dir)
    command.append(where.script(script))
    if is_lakehouse_entrypoint(script):
        command += [
            "--target",
            project.target_name,
            "--project-dir",
            where.project_dir,
            "--job",
            job_name,
            "--run-id",
            run_id,
            "--task-key",
            task.task_key,
        ]
        for name, value in (var_overrides or {}).items():
            command += ["--var", f"{name}={value}"]
    assert task.spark_python_task is not None  # checked by _task_script
    command += task.spark_python_task.parameters
    return command


def _task_script(project: Project, job_name: str, task: Task) -> Path:
    """The ``jobs/`` script of a ``spark_python_task`` (one that exists)."""
    where = f"resources.jobs.{job_name}.tasks[{task.task_key}]"
    if task.spark_python_task is None:
        raise ConfigError(
            "bundle.yml",
            where,
            "a python_function_task cannot be run with spark-submit yet; "
            "use a spark_python_task (a jobs/ script) on a spark target",
        )
    script = Path(project.resolve_path(task.spark_python_task.python_file))
    if not script.is_file():
        raise ConfigError(
            "bundle.yml", f"{where}.spark_python_task.python_file", f"{script} does not exist"
        )
    return script


@dataclass(frozen=True)
class _Where:
    """Paths as the driver sees them: this machine's, or under the project's directory there."""

    root: Path
    remote: str | None

    @property
    def project_dir(self) -> str:
        return self.remote or str(self.root)

    def path(self, local: Path) -> str:
        """``local`` rebased onto the remote project directory when it lies in the project."""
        if self.remote is None:
            return str(local)
        try:
            relative = local.resolve().relative_to(self.root.resolve())
        except ValueError:
            return str(local)
        return str(PurePosixPath(self.remote) / relative.as_posix())

    def script(self, script: Path) -> str:
        """A remote script is ``local:`` (a file the driver's machine or image has)."""
        return str(script) if self.remote is None else f"local://{self.path(script)}"


def _delta_options(spec: EngineSpec) -> list[str]:
    """``--jars`` (jar directory) or ``--packages`` (Maven) for Delta, unless conf names jars."""
    classpath = delta_classpath(spec)
    if classpath.jars:
        return ["--jars", ",".join(classpath.jars)]
    if classpath.packages:
        return ["--packages", ",".join(classpath.packages)]
    return []


def _submit_conf(
    project: Project, spec: EngineSpec, master: str, options: SubmitOptions
) -> dict[str, str]:
    conf: dict[str, str] = {}
    if delta_classpath(spec).has_delta:
        conf["spark.sql.extensions"] = DELTA_EXTENSION
        conf["spark.sql.catalog.spark_catalog"] = DELTA_CATALOG
    where = _Where(project.root, options.project_dir)
    conf["spark.sql.warehouse.dir"] = where.path((project.data_root / "warehouse").resolve())
    conf["spark.ui.showConsoleProgress"] = "false"
    conf.update(PORTABLE_PARQUET_CONF)
    conf.update(local_mode_conf(master))
    if options.project_dir is None and not cluster_manager_master(master):
        # Driver and executors run this interpreter, so they see the project's packages.
        conf["spark.pyspark.python"] = sys.executable
        conf["spark.pyspark.driver.python"] = sys.executable
    conf.update(spec.conf)
    conf.update(dict(options.conf))
    return conf


def cluster_manager_master(master: str) -> bool:
    """YARN or Kubernetes: executors run in containers, not with this machine's Python."""
    return master == "yarn" or master.startswith("k8s://")


# Set in this process by a Spark Connect session (Sail, connect) or by spark-submit's own
# driver; inherited, they would turn the child's SparkSession into a Connect client or
# point it at this process's JVM gateway.
SESSION_ENV_VARS = (
    "SPARK_CONNECT_MODE_ENABLED",
    "SPARK_REMOTE",
    "SPARK_LOCAL_REMOTE",
    "SPARK_CONNECT_AUTHENTICATE_TOKEN",
    "PYSPARK_GATEWAY_PORT",
    "PYSPARK_GATEWAY_SECRET",
)


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the variables of its own Spark session."""
    env = dict(os.environ if base is None else base)
    for name in SESSION_ENV_VARS:
        env.pop(name, None)
    return env


def submit_env(master: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a spark-submit process (loopback SPARK_LOCAL_IP for local masters)."""
    env = child_env(base)
    import pyspark

    # The wheel's scripts find SPARK_HOME with whatever `python3` is on PATH; name it.
    env.setdefault("SPARK_HOME", str(Path(pyspark.__file__).parent))
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    if _loopback_master(master):
        env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return env


def _loopback_master(master: str) -> bool:
    """``local[...]`` or a master on this host: the driver may bind to 127.0.0.1."""
    if master == "local" or master.startswith("local["):
        return True
    host = urlparse(master).hostname or ""
    return host in {"127.0.0.1", "localhost", "::1"}


def submit_task(
    project: Project,
    job_name: str,
    task: Task,
    run_id: str,
    *,
    timeout_seconds: float | None = None,
    log_dir: Path | None = None,
    echo: Callable[[str], None] = print,
    var_overrides: Mapping[str, str] | None = None,
    attempt: int = 1,
) -> SubmitResult:
    """Print the spark-submit line for ``task``, run it, and wait (killing it on timeout).

    Output goes to ``<log_dir>/<run_id>-<job>-<task>.log`` (``…-attempt<N>.log`` for a
    retry; default log dir: ``<data_root>/logs``). ``timeout_seconds`` of ``None`` or ``0``
    means no timeout; on timeout the whole process group (spark-submit's JVM and the Python
    driver) is stopped.
    """
    command = spark_submit_command(project, job_name, task, run_id, var_overrides=var_overrides)
    log_dir = log_dir or project.data_root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    suffix = f"-attempt{attempt}" if attempt > 1 else ""
    log_path = log_dir / f"{run_id}-{job_name}-{task.task_key}{suffix}.log"
    echo(shlex.join(command))
    started = time.perf_counter()
    timed_out = False
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=submit_env(project.engine.master),
            cwd=project.root,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=timeout_seconds or None)
        except subprocess.TimeoutExpired:
            timed_out = True
            returncode = stop_process_group(proc)
        except BaseException:  # KeyboardInterrupt: leave nothing running behind
            stop_process_group(proc)
            raise
    return SubmitResult(
        returncode=returncode,
        command=command,
        log_path=log_path,
        timed_out=timed_out,
        seconds=time.perf_counter() - started,
    )


class SubmitTimeoutError(TaskError):
    """A spark-submit run went over the task's ``timeout_seconds`` and was stopped."""


def submit_task_runner(
    project: Project,
    job_name: str,
    run_id: str,
    *,
    echo: Callable[[str], None] = print,
    var_overrides: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
) -> Callable[[Task, int], None]:
    """A task runner for ``run_job``: each attempt is one spark-submit run.

    Returns ``None`` when the run succeeded; raises :class:`SubmitTimeoutError` when it went over
    ``task.timeout_seconds`` (the process group is stopped first) and :class:`TaskError`
    with the telling log line when it failed.
    """

    def run(task: Task, attempt: int) -> None:
        result = submit_task(
            project,
            job_name,
            task,
            run_id,
            timeout_seconds=task.timeout_seconds or None,
            log_dir=log_dir,
            echo=echo,
            var_overrides=var_overrides,
            attempt=attempt,
        )
        if result.timed_out:
            raise SubmitTimeoutError(result.error())
        if not result.succeeded:
            raise TaskError(result.error())

    return run


def stop_process_group(proc: subprocess.Popen[bytes], grace_s: float = KILL_GRACE_S) -> int:
    """SIGTERM the process group of ``proc``, SIGKILL it after ``grace_s``; the exit code."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            return proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


_JVM_LOG_LINE = re.compile(r"^\d{2}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} (\w+) ")
_PYTHON_ERROR = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


def _telling_line(log_path: Path, limit: int = 300) -> str:
    """The line of the log that best says what went wrong.

    In this order, the last of: a lakehouse ``error:`` line, a Python exception line
    (``ValueError: ...``), a JVM ``ERROR`` log line; else the last non-empty line.
    """
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "no log"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return "no output"

    def last(match: Callable[[str], bool]) -> str | None:
        return next((ln for ln in reversed(lines) if match(ln)), None)

    found = (
        last(lambda ln: ln.startswith("error:"))
        or last(lambda ln: bool(_PYTHON_ERROR.match(ln)))
        or last(lambda ln: (m := _JVM_LOG_LINE.match(ln)) is not None and m.group(1) == "ERROR")
        or lines[-1]
    )
    return found[:limit]
