"""The bundle task that lands the demo file drops."""

from __future__ import annotations

import argparse
from pathlib import Path

from lakehouse.bundle.context import TaskContext
from lakehouse.samples.generator import SampleSpec, land_sample_files


def land_demo_files(ctx: TaskContext) -> None:
    """Write the deterministic demo drops (``--landing DIR [--customers N] [--seed S]``)."""
    parser = argparse.ArgumentParser(prog=ctx.task_key)
    parser.add_argument("--landing", required=True)
    parser.add_argument("--customers", type=int, default=SampleSpec.customers)
    parser.add_argument("--seed", type=int, default=SampleSpec.seed)
    args = parser.parse_args(ctx.parameters)
    landing = Path(ctx.project.resolve_path(args.landing))
    landed = land_sample_files(landing, SampleSpec(customers=args.customers, seed=args.seed))
    ctx.report.count(
        "sample drops",
        files_written=len(landed.written),
        files_unchanged=len(landed.unchanged),
    )
