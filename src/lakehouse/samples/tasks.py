"""The bundle task that lands the demo file drops."""

from __future__ import annotations

from pathlib import Path

from lakehouse.bundle.context import TaskContext
from lakehouse.core.params import TaskParams
from lakehouse.samples.generator import SampleSpec, land_sample_files


class LandDemoParams(TaskParams):
    """``--landing DIR [--customers N] [--seed S]``."""

    landing: str
    customers: int = SampleSpec.customers
    seed: int = SampleSpec.seed


def land_demo_files(ctx: TaskContext) -> None:
    """Write the deterministic demo drops (``--landing DIR [--customers N] [--seed S]``)."""
    args = LandDemoParams.parse(ctx.parameters, task=ctx.task_key)
    landing = Path(ctx.project.resolve_path(args.landing))
    landed = land_sample_files(landing, SampleSpec(customers=args.customers, seed=args.seed))
    ctx.report.count(
        "sample drops",
        files_written=len(landed.written),
        files_unchanged=len(landed.unchanged),
    )
