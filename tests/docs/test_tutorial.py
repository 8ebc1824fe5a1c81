"""docs/tutorial.md runs as written: each ```bash block in order, in a fresh directory.

Until the CLI has every command the tutorial uses (``init``, ``head``, ``sql QUERY``,
``catalog infer``, ``build`` come from other branches), the first step that needs a
missing command ends the test as *skipped*, naming the step and the command, after the
steps before it passed. Set ``SKIP_UNAVAILABLE = False`` once they are merged, so a
missing command fails instead.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.docs.tutorial import (
    REPO,
    Step,
    cli_env,
    install_shim,
    lakehouse_commands,
    missing_command,
    parse_steps,
    run_step,
)

TUTORIAL = REPO / "docs" / "tutorial.md"
SKIP_UNAVAILABLE = False


def run_all(steps: list[Step], workdir: Path) -> list[str]:
    """Run the steps in order; the labels of those that passed. Fails on the first step
    that exits non-zero or misses an expected output; skips at an unavailable command."""
    env = cli_env(install_shim(workdir / ".bin").parent)
    cwd, state, passed = workdir / "work", workdir / ".cwd", []
    cwd.mkdir()
    for step in steps:
        missing = missing_command(step)
        if missing is None:
            started = time.monotonic()
            outcome = run_step(step, cwd, env, state)
            if outcome.unavailable:
                missing = "a command the CLI answers with 'No such command'"
        if missing is not None:
            reason = (
                f"tutorial {step.label}: `{missing}` is not in the CLI yet (not listed by "
                f"`lakehouse --help`); passed before it: {', '.join(passed) or 'none'}"
            )
            if SKIP_UNAVAILABLE:
                pytest.skip(reason)
            pytest.fail(reason)
        if outcome.returncode != 0:
            pytest.fail(
                f"tutorial {step.label} exited {outcome.returncode}:\n{step.script}\n"
                f"{outcome.output}"
            )
        lost = outcome.missing_expects()
        if lost:
            pytest.fail(f"tutorial {step.label}: output lacks {lost}:\n{outcome.output}")
        passed.append(f"{step.number} ({time.monotonic() - started:.0f}s)")
        cwd = outcome.cwd
    return passed


def test_tutorial_has_the_agreed_flow() -> None:
    steps = parse_steps(TUTORIAL.read_text(encoding="utf-8"))
    assert 6 <= len(steps) <= 10
    used = [" ".join(words) for step in steps for words in lakehouse_commands(step.script)]
    assert used[:4] == [
        "init my_pipeline",
        "run",
        "head my_pipeline.bronze.orders",
        "sql SELECT product, SUM(orders) AS orders, SUM(revenue) AS revenue FROM "
        "my_pipeline.gold.daily_sales GROUP BY product ORDER BY product",
    ]
    assert {"catalog infer", "build my_pipeline.gold.product_sales"} <= set(used)
    assert steps[0].script.splitlines()[1] == "cd my_pipeline"
    assert all(step.expects for step in steps)


@pytest.mark.e2e
def test_tutorial_runs_step_by_step(tmp_path: Path) -> None:
    steps = parse_steps(TUTORIAL.read_text(encoding="utf-8"))
    passed = run_all(steps, tmp_path)
    assert len(passed) == len(steps)
