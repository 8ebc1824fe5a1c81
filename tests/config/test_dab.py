"""Databricks Asset Bundles read as Databricks writes them (tests/data/dab_config)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lakehouse.config import load_project
from lakehouse.config.catalog import Grant, TableSpec
from lakehouse.config.dab import ignored_keys
from lakehouse.config.loader import find_bundle_file
from lakehouse.config.local_values import current_user, short_name
from lakehouse.core.errors import ConfigError
from tests.config.editing import edit_yaml, load_error

DATA = Path(__file__).resolve().parents[1] / "data" / "dab_config"
USER = current_user()
IGNORED_DEV = [  # in the order of the bundle
    "bundle.databricks_cli_version",
    "bundle.cluster_id",  # targets.dev.cluster_id
    "workspace.host",
    "artifacts",
    "sync",
    "resources.pipelines.orders_pipeline.serverless",
    "resources.pipelines.orders_pipeline.channel",
    "resources.pipelines.orders_pipeline.clusters",
]


@pytest.fixture()
def dab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the DAB test project (without the job needing dab-jobs' fields when the
    Job model lacks them)."""
    for name in list(__import__("os").environ):
        if name.startswith(("BUNDLE_VAR_", "LAKEHOUSE_VAR_", "LAKEHOUSE_TARGET")):
            monkeypatch.delenv(name)
    root = tmp_path / "proj"
    shutil.copytree(DATA, root)
    return root


# ---------------------------------------------------------------- discovery and includes


def test_bundle_file_discovery_order(tmp_path: Path) -> None:
    for name in ("bundle.yaml", "bundle.yml", "databricks.yaml", "databricks.yml"):
        (tmp_path / name).write_text("bundle: {name: x}\n")
        assert find_bundle_file(tmp_path).name == name
    sub = tmp_path / "src" / "deep"
    sub.mkdir(parents=True)
    assert find_bundle_file(sub) == tmp_path / "databricks.yml"
    empty = tmp_path.parent / "empty"
    empty.mkdir()
    error = load_error(empty)
    assert error.file == "databricks.yml or bundle.yml"
    assert error.message.startswith(f"not found in {empty} or any parent directory")


def test_includes_merge_resources_from_several_files(dab: Path) -> None:
    project = load_project(dab)
    assert project.bundle_file == "databricks.yml" and project.dab
    assert "hello" in project.bundle.resources.jobs
    assert list(project.pipelines) == ["orders_pipeline"]
    assert project.file_of("resources.jobs.hello") == "resources/hello.job.yml"
    assert project.file_of("resources.pipelines.orders_pipeline") == (
        "resources/orders.pipeline.yml"
    )


def test_duplicate_resource_names_both_files(dab: Path) -> None:
    (dab / "resources" / "more.yml").write_text(
        "resources:\n  jobs:\n    hello:\n      tasks: []\n"
    )
    error = load_error(dab)
    assert str(error) == (
        "resources/more.yml: resources.jobs.hello: already declared in resources/hello.job.yml"
    )


def test_an_included_file_may_mix_fragments_and_conf_sections(dab: Path) -> None:
    (dab / "resources" / "mixed.yml").write_text(
        "variables:\n  owner_group: {default: analysts}\n"
        "catalog:\n  name: lake\n  storage_root: ./.lakehouse/lake\n"
        "  schemas:\n    bronze:\n      tables:\n        raw: {layer: bronze}\n"
    )
    project = load_project(dab)
    assert project.variables["owner_group"] == "analysts"
    assert project.catalog.name == "lake"
    assert "lake.bronze.raw" in project.tables


def test_unknown_key_fails_naming_file_and_key(dab: Path) -> None:
    edit_yaml(
        dab / "resources" / "orders.pipeline.yml",
        lambda d: d["resources"]["pipelines"]["orders_pipeline"].update({"colour": "red"}),
    )
    assert str(load_error(dab)) == (
        "resources/orders.pipeline.yml: resources.pipelines.orders_pipeline.colour: unknown key"
    )


def test_unknown_top_level_key_of_an_included_file(dab: Path) -> None:
    (dab / "resources" / "odd.yml").write_text("bundel: {name: x}\n")
    assert str(load_error(dab)) == "resources/odd.yml: bundel: unknown key"


# ---------------------------------------------------------------- variables and references


def test_variable_precedence_var_env_target_default(
    dab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_project(dab).pipelines["orders_pipeline"].catalog == "dev_catalog"
    monkeypatch.setenv("BUNDLE_VAR_warehouse_id", "wh")
    assert load_project(dab, target="prod").variables["catalog"] == "prod_catalog"
    monkeypatch.setenv("BUNDLE_VAR_catalog", "from_env")
    assert load_project(dab, target="prod").variables["catalog"] == "from_env"
    monkeypatch.setenv("LAKEHOUSE_VAR_catalog", "from_lakehouse_env")
    assert load_project(dab).variables["catalog"] == "from_lakehouse_env"
    project = load_project(dab, var_overrides={"catalog": "from_cli"})
    assert project.pipelines["orders_pipeline"].catalog == "from_cli"
    assert project.catalog.name == "from_cli"


def test_lookup_is_refused_without_a_local_value(
    dab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = load_error(dab, target="prod")
    assert error.file == "databricks.yml"
    assert error.key == "targets.prod.variables.warehouse_id.lookup"
    assert error.message.startswith(
        "'lookup' resolves a Databricks object id and needs a workspace"
    )
    assert "\n" not in str(error)
    monkeypatch.setenv("BUNDLE_VAR_warehouse_id", "wh-1")
    prod = load_project(dab, target="prod")
    assert prod.pipelines["orders_pipeline"].configuration["warehouse"] == "wh-1"
    monkeypatch.delenv("BUNDLE_VAR_warehouse_id")
    edit_yaml(dab / "databricks.yml", lambda d: d["targets"]["dev"].pop("variables"))
    assert load_error(dab).key == "variables.warehouse_id.lookup"


def test_complex_variable(dab: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {"label": "default", "spark_version": "15.4.x-scala2.12", "num_workers": 1}
    project = load_project(dab)
    assert project.variables["cluster_spec"] == spec
    assert project.pipelines["orders_pipeline"].clusters == [spec]
    monkeypatch.setenv("BUNDLE_VAR_cluster_spec", '{"label": "x", "num_workers": 4}')
    clusters = load_project(dab).pipelines["orders_pipeline"].clusters
    assert clusters == [{"label": "x", "num_workers": 4}]
    edit_yaml(dab / "databricks.yml", lambda d: d["variables"]["cluster_spec"].pop("type"))
    error = load_error(dab)
    assert (error.file, error.key) == ("databricks.yml", "variables.cluster_spec")
    assert "needs 'type: complex'" in error.message


def test_references_get_local_values(dab: Path) -> None:
    project = load_project(dab)
    pipeline = project.pipelines["orders_pipeline"]
    assert pipeline.schema_name == short_name(USER)  # ${workspace.current_user.short_name}
    assert pipeline.configuration == {
        "source_path": f"{dab}/data",  # ${workspace.file_path}
        "warehouse": "local-warehouse",
    }
    task = project.bundle.resources.jobs["hello"].tasks[0]
    assert task.parameters == [
        "--catalog",
        "dev_catalog",
        "--pipeline",
        "orders_pipeline",  # ${resources.pipelines.orders_pipeline.id}: the key
        "--pipeline-name",
        "orders_pipeline",
    ]


def test_a_resource_name_may_use_variables(dab: Path) -> None:
    edit_yaml(
        dab / "resources" / "orders.pipeline.yml",
        lambda d: d["resources"]["pipelines"]["orders_pipeline"].update(
            {"name": "orders_${var.catalog}"}
        ),
    )
    task = load_project(dab).bundle.resources.jobs["hello"].tasks[0]
    assert task.parameters[-1] == "orders_dev_catalog"


def test_unknown_reference_names_file_and_key(dab: Path) -> None:
    edit_yaml(
        dab / "resources" / "orders.pipeline.yml",
        lambda d: d["resources"]["pipelines"]["orders_pipeline"]["configuration"].update(
            {"x": "${workspace.nope}"}
        ),
    )
    error = load_error(dab)
    assert (error.file, error.key) == (
        "resources/orders.pipeline.yml",
        "resources.pipelines.orders_pipeline.configuration.x",
    )
    assert error.message.startswith("unknown reference '${workspace.nope}'")


def test_relative_paths_resolve_against_the_declaring_file(dab: Path) -> None:
    pipeline = load_project(dab).pipelines["orders_pipeline"]
    src = dab / "src" / "orders_pipeline"
    assert pipeline.root_path == str(src)
    assert [lib.model_dump(exclude_none=True) for lib in pipeline.libraries] == [
        {"glob": {"include": f"{src}/transformations/**"}},
        {"file": {"path": f"{src}/extra.sql"}},
    ]
    task = load_project(dab).bundle.resources.jobs["hello"].tasks[0]
    assert task.spark_python_task is not None
    assert task.spark_python_task.python_file == "src/hello.py"  # relative to the bundle root


def test_rebase_covers_notebook_and_absolute_paths(tmp_path: Path) -> None:
    from lakehouse.config.dab import rebase_resource_paths

    resources = {
        "jobs": {
            "j": {
                "tasks": [
                    {"notebook_task": {"notebook_path": "../src/nb.ipynb"}},
                    {"spark_python_task": {"python_file": "/abs/x.py"}},
                    {"spark_python_task": {"python_file": "${workspace.file_path}/x.py"}},
                    {"notebook_task": {"notebook_path": "../../outside.py"}},
                ]
            }
        }
    }
    out = rebase_resource_paths(resources, tmp_path / "resources", tmp_path)
    tasks = out["jobs"]["j"]["tasks"]
    assert tasks[0]["notebook_task"]["notebook_path"] == "src/nb.ipynb"
    assert tasks[1]["spark_python_task"]["python_file"] == "/abs/x.py"
    assert tasks[2]["spark_python_task"]["python_file"] == "${workspace.file_path}/x.py"
    assert tasks[3]["notebook_task"]["notebook_path"] == str(tmp_path.parent / "outside.py")


# ---------------------------------------------------------------- targets, mode, presets


def test_development_mode_pauses_schedules_and_prefixes_names(dab: Path) -> None:
    dev = load_project(dab)
    assert dev.schedules_paused
    hello = dev.bundle.resources.jobs["hello"]
    assert hello.schedule is not None and hello.schedule.pause_status == "PAUSED"
    assert hello.max_concurrent_runs == 4  # Databricks' development default
    assert hello.name == "hello"  # names unchanged: the prefix is a property
    assert dev.name_prefix == f"[dev {short_name(USER)}] "
    assert dev.presets.tags == {"dev": short_name(USER)}
    assert dev.pipelines["orders_pipeline"].development is True


def test_development_mode_keeps_an_explicit_unpaused_schedule(dab: Path) -> None:
    edit_yaml(
        dab / "resources" / "hello.job.yml",
        lambda d: d["resources"]["jobs"]["hello"]["schedule"].update({"pause_status": "UNPAUSED"}),
    )
    schedule = load_project(dab).bundle.resources.jobs["hello"].schedule
    assert schedule is not None and schedule.pause_status == "UNPAUSED"


def test_presets_unpause_development_schedules(dab: Path) -> None:
    edit_yaml(
        dab / "databricks.yml",
        lambda d: d["targets"]["dev"].update({"presets": {"trigger_pause_status": "UNPAUSED"}}),
    )
    project = load_project(dab)
    assert not project.schedules_paused
    schedule = project.bundle.resources.jobs["hello"].schedule
    assert schedule is not None and schedule.pause_status == "UNPAUSED"


def test_production_target_overrides(dab: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUNDLE_VAR_warehouse_id", "wh")
    prod = load_project(dab, target="prod")
    assert not prod.schedules_paused
    schedule = prod.bundle.resources.jobs["hello"].schedule
    assert schedule is not None and schedule.pause_status == "UNPAUSED"
    assert prod.name_prefix == "[prod] "
    assert prod.presets.tags == {"env": "prod"}
    assert prod.bundle.run_as is not None and prod.bundle.run_as.principal == "etl-sp"
    pipeline = prod.pipelines["orders_pipeline"]
    assert pipeline.development is None
    assert pipeline.configuration == {  # the target's resources merged over the root ones
        "source_path": f"{dab}/data",
        "warehouse": "wh",
        "orders.min_amount": "10",
    }
    assert prod.bundle.resources.jobs["hello"].max_concurrent_runs == 2
    assert "workspace.root_path" in ignored_keys(prod)


def test_our_dialect_keeps_mode_as_a_label(demo_project_dir: Path) -> None:
    project = load_project(demo_project_dir)
    assert project.bundle_file == "bundle.yml" and not project.dab
    assert project.target.mode == "development"
    assert not project.schedules_paused and project.name_prefix == ""
    assert project.data_root == demo_project_dir / "data"
    assert ignored_keys(project) == []


def test_top_level_permissions_apply_to_every_job(dab: Path) -> None:
    job = load_project(dab).bundle.resources.jobs["hello"]
    assert [(p.level, p.principal) for p in job.permissions] == [
        ("CAN_MANAGE_RUN", "data-engineers")
    ]


# ---------------------------------------------------------------- ignored keys


def test_ignored_keys_listed_once(dab: Path) -> None:
    ignored = ignored_keys(load_project(dab))
    jobs = [k for k in ignored if k.startswith("resources.jobs.")]
    assert [k for k in ignored if k not in jobs] == IGNORED_DEV
    assert len(ignored) == len(set(ignored))


def test_job_compute_keys_are_ignored(dab: Path) -> None:
    ignored = ignored_keys(load_project(dab))
    assert [k for k in ignored if k.startswith("resources.jobs.")] == [
        "resources.jobs.etl.job_clusters",
        "resources.jobs.etl.environments",
        "resources.jobs.etl.tasks[0].job_cluster_key",
        "resources.jobs.etl.tasks[0].libraries",
        "resources.jobs.etl.tasks[1].environment_key",
    ]


def test_bundle_validate_prints_ignored_keys(dab: Path) -> None:
    from lakehouse.cli import app

    result = CliRunner().invoke(app, ["bundle", "validate", "-C", str(dab)], terminal_width=200)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if "ignored locally:" in line)
    listed = [line.strip() for line in lines[start + 1 :] if line.startswith("    ")]
    assert [k for k in listed if not k.startswith("resources.jobs.")] == IGNORED_DEV
    assert "pipeline orders_pipeline: 2 libraries" in result.output


# ---------------------------------------------------------------- implicit catalog


def test_implicit_catalog(dab: Path) -> None:
    project = load_project(dab)
    catalog = project.catalog
    assert catalog.name == "dev_catalog"  # the pipelines' catalog
    assert catalog.storage_root == f"{dab}/.lakehouse/tables"
    assert project.data_root == dab / ".lakehouse"
    assert catalog.owner == USER
    assert Grant(principal=USER, privileges=["ALL PRIVILEGES"]) in catalog.grants
    assert sorted(catalog.schemas) == ["meta", short_name(USER)]
    ref = project.add_table("dev_catalog.silver.orders", TableSpec(layer="silver"))
    assert ref.location == f"{dab}/.lakehouse/tables/silver/orders"
    assert project.tables["dev_catalog.silver.orders"] is ref
    assert "orders" in project.catalog.schemas["silver"].tables
    assert project.add_table("dev_catalog.silver.orders", TableSpec(layer="gold")) is ref
    other = project.add_table("other.silver.orders", TableSpec(layer="silver"))
    assert other.location == f"{dab}/.lakehouse/tables/other/silver/orders"
    assert "other" not in project.catalog.schemas
    with pytest.raises(ConfigError, match=r"expected catalog\.schema\.table"):
        project.add_table("silver.orders", TableSpec(layer="silver"))


def test_resources_schemas_become_schemas_of_the_implicit_catalog(dab: Path) -> None:
    (dab / "resources" / "schemas.yml").write_text(
        "resources:\n  schemas:\n    gold:\n      catalog_name: ${var.catalog}\n"
        "      name: gold\n      grants: [{principal: x, privileges: [USE_SCHEMA]}]\n"
    )
    project = load_project(dab)
    assert sorted(project.catalog.schemas) == ["gold", "meta", short_name(USER)]
    assert "resources.schemas.gold.grants" in ignored_keys(project)


def test_implicit_catalog_is_main_when_pipelines_disagree(dab: Path) -> None:
    edit_yaml(
        dab / "resources" / "orders.pipeline.yml",
        lambda d: d["resources"]["pipelines"].update(
            {"other": {"catalog": "elsewhere", "schema": "s"}}
        ),
    )
    assert load_project(dab).catalog.name == "main"


def test_databricks_privilege_spellings() -> None:
    grant = Grant(principal="a", privileges=["USE_CATALOG", "USE_SCHEMA", "ALL_PRIVILEGES"])
    assert grant.privileges == ["USE CATALOG", "USE SCHEMA", "ALL PRIVILEGES"]
    assert Grant(principal="a", privileges=["CREATE_TABLE"]).privileges == ["CREATE TABLE"]


def test_an_include_matching_the_bundle_file_skips_it(dab: Path) -> None:
    edit_yaml(dab / "databricks.yml", lambda d: d["include"].append("*.yml"))
    assert list(load_project(dab).pipelines) == ["orders_pipeline"]


def test_collector_walks_the_raw_bundle_without_the_job_models() -> None:
    from lakehouse.config.dab import collect_ignored
    from lakehouse.config.loader import read_yaml

    raw = read_yaml(DATA / "resources" / "etl.job.yml", "etl.job.yml")
    raw["resources"]["jobs"]["etl"]["tasks"].append(
        {"task_key": "x", "existing_cluster_id": "abc", "notebook_task": {"warehouse_id": "w"}}
    )
    assert collect_ignored(raw) == [
        "resources.jobs.etl.job_clusters",
        "resources.jobs.etl.environments",
        "resources.jobs.etl.tasks[0].job_cluster_key",
        "resources.jobs.etl.tasks[0].libraries",
        "resources.jobs.etl.tasks[1].environment_key",
        "resources.jobs.etl.tasks[2].existing_cluster_id",
        "resources.jobs.etl.tasks[2].notebook_task.warehouse_id",
    ]


def test_bundle_git_references_read_the_checkout(dab: Path) -> None:
    git = dab / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/feature/x\n")
    (git / "refs" / "heads" / "feature").mkdir()
    (git / "refs" / "heads" / "feature" / "x").write_text("abc123\n")
    (git / "config").write_text('[remote "origin"]\n\turl = https://example.com/r.git\n')
    edit_yaml(
        dab / "resources" / "orders.pipeline.yml",
        lambda d: d["resources"]["pipelines"]["orders_pipeline"]["configuration"].update(
            {"git": "${bundle.git.branch}@${bundle.git.commit} ${bundle.git.origin_url}"}
        ),
    )
    configuration = load_project(dab).pipelines["orders_pipeline"].configuration
    assert configuration["git"] == "feature/x@abc123 https://example.com/r.git"
