"""Task parameters: one typed parser for bundle.yml parameters, jobs/ scripts and the CLI."""

from __future__ import annotations

import datetime as dt

import pytest

from lakehouse.core.params import TaskParamError, TaskParams
from lakehouse.pipelines.bronze.ingest import IngestParams
from lakehouse.pipelines.ml.train import TrainParams
from lakehouse.pipelines.monitoring.monitor import MonitorParams
from lakehouse.pipelines.silver.refine import RefineParams
from lakehouse.samples.tasks import LandDemoParams


def test_each_task_reads_its_parameters_as_before() -> None:
    assert RefineParams.parse(["a", "--full-refresh", "b"], task="refine") == RefineParams(
        tables=("a", "b"), full_refresh=True
    )
    assert RefineParams.parse([], task="refine") == RefineParams()
    assert TrainParams.parse(["--force"], task="train") == TrainParams(force=True)
    assert MonitorParams.parse(["--as-of", "2026-03-01T12:00:00", "churn"], task="m") == (
        MonitorParams(models=("churn",), as_of=dt.datetime(2026, 3, 1, 12))
    )
    assert IngestParams.parse(
        ["--sources", "a", "b", "--with-sample-api", "8765"], task="ingest"
    ) == IngestParams(sources=("a", "b"), with_sample_api=8765)
    assert LandDemoParams.parse(
        ["--landing", "/d/landing", "--customers=50"], task="land"
    ) == LandDemoParams(landing="/d/landing", customers=50)


@pytest.mark.parametrize(
    ("params", "argv", "message"),
    [
        (
            TrainParams,
            ["--frce"],
            "task t: unknown parameter '--frce' (takes: [MODELS]... [--force])",
        ),
        (TaskParams, ["x"], "task t: unknown parameter 'x' (takes: no parameters)"),
        (LandDemoParams, ["--seed", "1"], "task t: missing parameter --landing"),
        (LandDemoParams, ["--landing"], "task t: parameter --landing needs a value"),
        (RefineParams, ["--full-refresh=yes"], "task t: parameter --full-refresh takes no value"),
        (
            IngestParams,
            ["--with-sample-api", "http"],
            "task t: parameter --with-sample-api: Input should be a valid integer, unable to "
            "parse string as an integer (got 'http')",
        ),
    ],
)
def test_a_bad_parameter_is_one_line_naming_task_and_parameter(
    params: type[TaskParams], argv: list[str], message: str
) -> None:
    with pytest.raises(TaskParamError) as err:
        params.parse(argv, task="t")
    assert str(err.value) == message
