"""conf/monitoring.yml: typed, defaults filled, errors naming the file and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lakehouse.config import load_project
from lakehouse.core.errors import ConfigError


def _edit(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _error(project_dir: Path, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_project(project_dir, **kwargs)
    return info.value


def test_demo_monitoring_config_and_the_generated_table(demo_project_dir: Path) -> None:
    project = load_project(demo_project_dir, var_overrides={"monitoring_webhook_url": ""})
    churn = project.monitoring.models["churn"]
    assert (churn.drift.current, churn.drift.psi_threshold, churn.drift.alpha) == (
        "gold",
        0.2,
        0.05,
    )
    assert churn.performance.max_drop == {"roc_auc": 0.05}
    assert project.monitoring.webhook_url == ""
    table = project.tables["lakehouse.meta.model_monitoring"]
    assert [(c.name, c.type) for c in table.spec.columns] == [
        ("monitored_at", "timestamp"), ("monitor_run_id", "string"), ("model_name", "string"),
        ("model_version", "string"), ("kind", "string"), ("subject", "string"),
        ("metric", "string"), ("value", "double"), ("threshold", "double"),
        ("alert", "boolean"), ("window_start", "timestamp"), ("window_end", "timestamp"),
        ("reference_rows", "bigint"), ("current_rows", "bigint"), ("details", "string"),
    ]  # fmt: skip


def test_webhook_url_from_the_bundle_variable(
    demo_project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKEHOUSE_VAR_monitoring_webhook_url", "http://127.0.0.1:9/hook")
    assert load_project(demo_project_dir).monitoring.webhook_url == "http://127.0.0.1:9/hook"
    err = _error(demo_project_dir, var_overrides={"monitoring_webhook_url": "ftp://x"})
    assert (err.file, err.key) == ("conf/monitoring.yml", "monitoring.webhook_url")


def test_unknown_model_feature_and_key_name_file_and_key(demo_project_dir: Path) -> None:
    path = demo_project_dir / "conf" / "monitoring.yml"
    original = path.read_text()
    _edit(path, lambda d: d["monitoring"]["models"].update({"fraud": {}}))
    err = _error(demo_project_dir)
    assert (err.file, err.key) == ("conf/monitoring.yml", "monitoring.models.fraud")
    assert "no such model" in err.message

    path.write_text(original)
    _edit(path, lambda d: d["monitoring"]["models"]["churn"]["drift"].update({"features": ["x"]}))
    err = _error(demo_project_dir)
    assert (err.file, err.key) == (
        "conf/monitoring.yml",
        "monitoring.models.churn.drift.features[0]",
    )

    path.write_text(original)
    _edit(path, lambda d: d["monitoring"]["models"]["churn"]["drift"].update({"alpah": 0.1}))
    err = _error(demo_project_dir)
    assert (err.file, err.key, err.message) == (
        "conf/monitoring.yml",
        "monitoring.models.churn.drift.alpah",
        "unknown key",
    )

    path.write_text(original)
    _edit(path, lambda d: d["monitoring"]["models"]["churn"]["performance"].update(
        {"thresholds": {"auc": 0.7}}
    ))  # fmt: skip
    err = _error(demo_project_dir)
    assert err.file == "conf/monitoring.yml"
    assert err.key.startswith("monitoring.models.churn.performance.thresholds")
