"""The templates of `lakehouse init`, rendered in-process: valid projects, marked columns,
short YAML, YAML scalars that read back as written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lakehouse.config.loader import load_project
from lakehouse.project_init import TEMPLATES, init_project, job_script, yaml_scalar

# non-blank, non-comment lines of bundle.yml + conf/*.yml: the point of issue 19 is that a
# new project starts with little YAML; a template that grows should be a decision
YAML_LINES = {"minimal": 32, "medallion": 69, "mlops": 130}


def _yaml_lines(project: Path) -> int:
    files = [project / "bundle.yml", *sorted((project / "conf").glob("*.yml"))]
    lines = [line for f in files for line in f.read_text().splitlines()]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


@pytest.mark.parametrize("template", TEMPLATES)
def test_each_template_is_a_valid_project(tmp_path: Path, template: str) -> None:
    project = tmp_path / f"{template}-project"
    result = init_project(project, template)
    assert result.name == f"{template}_project"
    loaded = load_project(project)
    assert loaded.name == f"{template}_project"
    assert list(loaded.bundle.resources.jobs) == [f"{template}_project"]
    assert sorted(loaded.sources) == sorted(result.sources)
    assert _yaml_lines(project) == YAML_LINES[template]
    for conf in (project / "conf").glob("*.yml"):  # every column is derived from the data
        assert "columns:" not in conf.read_text(), conf.name
    scripts = sorted(p.name for p in (project / "jobs").iterdir())
    tasks = loaded.bundle.resources.jobs[f"{template}_project"].tasks
    assert scripts == sorted(
        Path(t.spark_python_task.python_file).name for t in tasks if t.spark_python_task
    )
    assert (project / ".gitignore").read_text().splitlines()[1:3] == ["data/*", "!data/landing/"]


def test_models_and_quality_rules_of_the_mlops_template(tmp_path: Path) -> None:
    init_project(tmp_path / "p", "mlops")
    project = load_project(tmp_path / "p")
    assert list(project.models) == ["churn"]
    assert project.models["churn"].registered_name == "p_churn"
    assert [r.name for r in project.silver["p.silver.orders"].rules] == [
        "quantity_positive",
        "status_known",
    ]
    assert sorted(project.gold) == ["p.gold.customer_features", "p.gold.daily_sales"]


@pytest.mark.parametrize(
    "value",
    ["orders", "${var.data_root}/landing/x", "/tmp/a b", "*.csv", "yes", "No", "null", "1.5", ";"],
)
def test_yaml_scalar_reads_back_as_the_same_string(value: str) -> None:
    assert yaml.safe_load(f"k: {yaml_scalar(value, block=True)}") == {"k": value}
    assert yaml.safe_load(f"- {yaml_scalar(value, block=True)}") == [value]
    assert yaml.safe_load(f"k: {{a: {yaml_scalar(value)}}}") == {"k": {"a": value}}


def test_job_script_is_a_thin_entry_point() -> None:
    script = job_script("refine_silver")
    assert "from lakehouse.pipelines.silver.refine import refine_silver as TASK" in script
    compile(script, "refine_silver.py", "exec")
