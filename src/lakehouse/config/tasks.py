"""Task kinds of a bundle job, as Databricks Asset Bundles write them.

``spark_python_task``, ``notebook_task``, ``python_wheel_task``, ``pipeline_task``,
``run_job_task`` and ``condition_task`` (plus the project's own ``python_function_task``
in :mod:`lakehouse.config.jobs`). The bundle runner runs each of them locally
(:mod:`lakehouse.bundle.tasks`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from lakehouse.config.base import (
    SECRET_PARAMETER_HINT,
    Identifier,
    StrictModel,
    parameter_secret,
)


def no_secret_parameters(parameters: list[str]) -> list[str]:
    """Refuse secret-looking plain parameters (they are recorded with every run)."""
    reason = parameter_secret(parameters)
    if reason:
        raise ValueError(f"{reason}; {SECRET_PARAMETER_HINT}")
    return parameters


def _no_secret_values(parameters: dict[str, str]) -> dict[str, str]:
    no_secret_parameters([f"--{k}={v}" for k, v in parameters.items()])
    return parameters


def _as_text(value: object) -> object:
    """YAML numbers and booleans given as parameter values become the text Databricks sees."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_as_text)]
PlainParameters = Annotated[list[Text], AfterValidator(no_secret_parameters)]
NamedParameters = Annotated[dict[str, Text], AfterValidator(_no_secret_values)]
Source = Literal["WORKSPACE", "GIT"]

RunIf = Literal[
    "ALL_SUCCESS",
    "AT_LEAST_ONE_SUCCESS",
    "NONE_FAILED",
    "ALL_DONE",
    "AT_LEAST_ONE_FAILED",
    "ALL_FAILED",
]
ConditionOp = Literal[
    "EQUAL_TO",
    "NOT_EQUAL",
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUAL",
    "LESS_THAN",
    "LESS_THAN_OR_EQUAL",
]


class TaskDependency(StrictModel):
    task_key: Identifier
    outcome: Literal["true", "false"] | None = Field(
        default=None,
        description="for a condition_task upstream: run only on this outcome",
    )


class SparkPythonTask(StrictModel):
    python_file: str = Field(
        description="a jobs/ script exposing TASK, or a plain PySpark script (run as __main__)"
    )
    parameters: PlainParameters = Field(default_factory=list)
    source: Source | None = Field(default=None, description="accepted; files are local")


class NotebookTask(StrictModel):
    notebook_path: str = Field(
        description=".ipynb or Databricks source notebook (.py); the extension may be left out"
    )
    base_parameters: NamedParameters = Field(
        default_factory=dict, description="widget values (dbutils.widgets.get)"
    )
    source: Source | None = Field(default=None, description="accepted; files are local")
    warehouse_id: str | None = Field(default=None, description="accepted and ignored locally")


class PythonWheelTask(StrictModel):
    package_name: str = Field(description="the distribution whose entry point is called")
    entry_point: str = Field(description="an entry point name of the package (any group)")
    parameters: PlainParameters = Field(default_factory=list, description="sys.argv[1:]")
    named_parameters: NamedParameters = Field(
        default_factory=dict, description="passed as --key=value (instead of parameters)"
    )


class PipelineTask(StrictModel):
    pipeline_id: str = Field(description="key of resources.pipelines (${resources.pipelines.x.id})")
    full_refresh: bool = Field(False, description="recompute every table from scratch")


class RunJobTask(StrictModel):
    job_id: Text = Field(description="key of resources.jobs (${resources.jobs.x.id})")
    job_parameters: NamedParameters = Field(
        default_factory=dict, description="the called job's parameters"
    )


class ConditionTask(StrictModel):
    op: ConditionOp
    left: Text = Field(description="a value or a {{...}} reference")
    right: Text = Field(description="a value or a {{...}} reference")


TASK_KINDS = (
    "spark_python_task",
    "python_function_task",
    "notebook_task",
    "python_wheel_task",
    "pipeline_task",
    "run_job_task",
    "condition_task",
)
"""The task kind fields of a task: exactly one is given."""
