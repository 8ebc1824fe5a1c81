"""``lakehouse bundle submit``: a job's tasks as ``spark-submit`` command lines, printed
(``--dry-run``) or run one after the other, for YARN, Kubernetes or a standalone master."""

from __future__ import annotations

import shlex
import subprocess
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from lakehouse.cli._context import CliError, _load
from lakehouse.cli.bundle import bundle_app
from lakehouse.cli.options import EngineOpt, ProjectDir, TargetOpt, VarOpt
from lakehouse.cli.render import console
from lakehouse.config.loader import parse_var_overrides

if TYPE_CHECKING:
    from lakehouse.config.project import Project


class DeployMode(StrEnum):
    client = "client"
    cluster = "cluster"


JobOpt = Annotated[
    str | None, typer.Argument(help="A job of resources.jobs (default: the only one).")
]

TaskOpt = Annotated[
    list[str] | None,
    typer.Option("--task", help="Only this task (repeatable; default: every task, in order)."),
]

DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the command lines, run nothing.")]

MasterOpt = Annotated[
    str | None,
    typer.Option(
        "--master",
        help="Master URL (yarn, k8s://https://HOST:PORT, spark://…); "
        "default: the target's engine.master.",
    ),
]

DeployModeOpt = Annotated[
    DeployMode | None,
    typer.Option("--deploy-mode", help="client (driver here) or cluster (driver on the cluster)."),
]

ConfOpt = Annotated[
    list[str] | None,
    typer.Option("--conf", help="Spark conf KEY=VALUE (repeatable); wins over the target's."),
]

PyFilesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--py-files", help="A .whl/.zip/.py shipped to the driver and executors (repeatable)."
    ),
]

ClusterProjectDirOpt = Annotated[
    str | None,
    typer.Option(
        "--cluster-project-dir",
        help="The project's directory where the driver runs (in the image, or on every "
        "node): scripts become local://DIR/jobs/…, the entry point gets --project-dir DIR.",
    ),
]

SparkSubmitOpt = Annotated[
    str | None,
    typer.Option("--spark-submit", help="The spark-submit to call (default: the pyspark wheel's)."),
]

RunIdOpt = Annotated[
    str | None,
    typer.Option("--run-id", help="Run id passed to the entry points (default: new)."),
]


@bundle_app.command("submit")
def bundle_submit(
    job: JobOpt = None,
    task: TaskOpt = None,
    dry_run: DryRunOpt = False,
    master: MasterOpt = None,
    deploy_mode: DeployModeOpt = None,
    conf: ConfOpt = None,
    py_files: PyFilesOpt = None,
    cluster_project_dir: ClusterProjectDirOpt = None,
    spark_submit: SparkSubmitOpt = None,
    run_id: RunIdOpt = None,
    project_dir: ProjectDir = None,
    target: TargetOpt = None,
    engine: EngineOpt = None,
    var: VarOpt = None,
) -> None:
    """Submit a job's tasks with spark-submit (Delta packages, Delta SQL conf, the jobs/ entry
    point and its arguments), or print the command lines with --dry-run."""
    from lakehouse.bundle.runner import select_job, select_tasks
    from lakehouse.bundle.submit import SubmitOptions, spark_submit_command, submit_env
    from lakehouse.runtime.run import new_run_id

    project = _load(project_dir, target, engine, var)
    _require_spark_target(project)
    job_name, job_spec = select_job(project, job)
    options = SubmitOptions(
        master=master,
        deploy_mode=deploy_mode.value if deploy_mode else None,
        conf=tuple(_conf_pairs(conf or [])),
        py_files=tuple(py_files or []),
        project_dir=cluster_project_dir,
        spark_submit=spark_submit,
    )
    rid = run_id or new_run_id()
    overrides = parse_var_overrides(var)
    commands = [
        spark_submit_command(project, job_name, t, rid, var_overrides=overrides, options=options)
        for t in select_tasks(job_spec, task)
    ]
    if dry_run:
        for command in commands:
            print(shlex.join(command))
        return
    _run_in_order(commands, submit_env(options.master or project.engine.master), project)


def _require_spark_target(project: Project) -> None:
    if project.engine.kind != "spark":
        raise CliError(
            f"bundle submit runs tasks with spark-submit: target {project.target_name!r} has "
            f"engine {project.engine.kind!r} (use a spark target, or --engine spark)"
        )


def _conf_pairs(values: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise CliError(f"--conf: expected KEY=VALUE, got {value!r}")
        pairs.append((key, rest))
    return pairs


def _run_in_order(commands: list[list[str]], env: dict[str, str], project: Project) -> None:
    """Run each command (output to this terminal); stop at the first that fails."""
    for command in commands:
        console.print(f"$ {shlex.join(command)}", markup=False, highlight=False, soft_wrap=True)
        code = subprocess.run(command, env=env, cwd=project.root, check=False).returncode
        if code != 0:
            raise CliError(f"spark-submit exited {code}: {command[command.index('--name') + 1]}")
