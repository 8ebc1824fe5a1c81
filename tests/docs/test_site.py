"""The docs site builds with ``mkdocs build --strict``: no broken link, anchor or snippet,
every page in the nav, the generated configuration reference in place."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.docs.tutorial import REPO


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert pages == [
        "404.html",
        "benchmarks.html",
        "configuration.html",
        "csv-files.html",
        "data-layout.html",
        "databricks/auto-cdc.html",
        "databricks/bundles.html",
        "databricks/index.html",
        "databricks/jobs.html",
        "databricks/pipeline-sql.html",
        "databricks/pipelines.html",
        "databricks/tasks.html",
        "deploying.html",
        "development.html",
        "engines.html",
        "getting-started.html",
        "governance.html",
        "index.html",
        "init.html",
        "installing.html",
        "jobs.html",
        "looking-at-tables.html",
        "medallion.html",
        "models.html",
        "notebooks.html",
        "reference/config.html",
        "row-filters.html",
        "running.html",
        "schema-evolution.html",
        "schema-inference.html",
        "sql-endpoint.html",
        "tutorial.html",
    ]
    reference = (site / "reference" / "config.html").read_text(encoding="utf-8")
    assert 'id="silverspec"' in reference and 'id="bundlespec"' in reference
    assert 'id="pipelineresource"' in reference
    assert (site / "img" / "lineage-churn-predictions.svg").is_file()
    assert not (site / "_incoming").exists() and not (site / "hooks.py").exists()
    notebooks = (site / "notebooks.html").read_text(encoding="utf-8")
    assert "Getting a session in your own notebook" in notebooks  # snippet of notebooks/README.md
