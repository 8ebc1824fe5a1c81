"""deploy/kubernetes (Sail's kubernetes-cluster mode) and the spark-submit RBAC: every
manifest validates against the Kubernetes schemas, and they agree with the bundle's k8s target
and with the settings Sail reads. No cluster is reachable here: nothing is applied."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from lakehouse.config.loader import load_project
from lakehouse.engine import sail_env_name, sail_settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
MANIFESTS = [
    *sorted(KUBERNETES.glob("*.yaml")),
    ROOT / "deploy" / "spark-submit" / "kubernetes-rbac.yaml",
]
# the oldest Kubernetes release still maintained upstream and the newest the validator knows
KUBERNETES_VERSIONS = ["1.32", "1.37"]


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def resources() -> dict[tuple[str, str], dict[str, Any]]:
    """Every resource of deploy/, by (kind, name)."""
    return {
        (doc["kind"], doc["metadata"]["name"]): doc for path in MANIFESTS for doc in documents(path)
    }


@cache
def sail_setting_keys() -> frozenset[str]:
    """The settings the installed Sail reads: its application config is compiled into the
    native library as YAML (``- key: cluster.driver_listen_host``)."""
    import pysail

    native = next(Path(pysail.__file__).parent.glob("_native*.so"))
    keys = re.findall(rb"- key: ([a-z0-9_.]+)\n  type: ", native.read_bytes())
    assert len(keys) > 100, f"no Sail settings found in {native}"
    return frozenset(k.decode() for k in keys)


def k8s_target_engine():  # type: ignore[no-untyped-def]
    return load_project(ROOT, target="k8s").engine


def driver_container() -> dict[str, Any]:
    job = resources()[("Job", "lakehouse-demo")]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(version: str) -> None:
    checked = []
    for path in MANIFESTS:
        for doc in documents(path):
            kubernetes_validate.validate(doc, version, strict=True)  # raises when invalid
            checked.append(f"{path.name}:{doc['kind']}/{doc['metadata']['name']}")
    assert checked == [
        "job.yaml:Job/lakehouse-demo",
        "namespace.yaml:Namespace/lakehouse",
        "pvc.yaml:PersistentVolumeClaim/lakehouse-data",
        "rbac.yaml:ServiceAccount/lakehouse-driver",
        "rbac.yaml:ServiceAccount/lakehouse-worker",
        "rbac.yaml:Role/lakehouse-sail-workers",
        "rbac.yaml:RoleBinding/lakehouse-sail-workers",
        "kubernetes-rbac.yaml:ServiceAccount/lakehouse-spark",
        "kubernetes-rbac.yaml:Role/lakehouse-spark-driver",
        "kubernetes-rbac.yaml:RoleBinding/lakehouse-spark-driver",
    ]


def test_the_validator_rejects_an_unknown_field() -> None:
    """Strict validation catches a typo (so the test above proves something)."""
    job = documents(KUBERNETES / "job.yaml")[0]
    job["spec"]["template"]["spec"]["containers"][0]["envv"] = []
    with pytest.raises(kubernetes_validate.ValidationError, match="'envv' was unexpected"):
        kubernetes_validate.validate(job, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_targets_worker_pod_template_is_a_pod_template(version: str) -> None:
    k8s = k8s_target_engine().kubernetes
    template = {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": "sail-worker"},
        "template": k8s.worker_pod_template,
    }
    kubernetes_validate.validate(template, version, strict=True)
    # Sail merges the template's containers into its own by name: "worker"
    assert [c["name"] for c in k8s.worker_pod_template["spec"]["containers"]] == ["worker"]


def test_driver_env_names_are_settings_sail_reads() -> None:
    known = {sail_env_name(key) for key in sail_setting_keys()} | {sail_env_name("mode")}
    env = {e["name"] for e in driver_container()["env"]}
    assert env == {
        "SAIL_CLUSTER__DRIVER_LISTEN_HOST",
        "SAIL_CLUSTER__DRIVER_EXTERNAL_HOST",
        "SAIL_KUBERNETES__DRIVER_POD_NAME",
        "SAIL_KUBERNETES__NAMESPACE",
    }
    assert env <= known, env - known


def test_the_target_and_the_pod_set_each_setting_once() -> None:
    """The target's settings (sail_settings) and the pod's environment do not overlap, and
    together they give Sail's kubernetes-cluster mode what it needs."""
    from_target = sail_settings(k8s_target_engine(), catalog="lakehouse")
    from_pod = {e["name"]: e for e in driver_container()["env"]}
    known = {sail_env_name(key) for key in sail_setting_keys()} | {sail_env_name("mode")}
    assert set(from_target) <= known, set(from_target) - known
    assert not set(from_target) & set(from_pod)
    assert from_target["SAIL_MODE"] == "kubernetes-cluster"
    assert from_target["SAIL_CLUSTER__WORKER_INITIAL_COUNT"] == "2"
    assert from_target["SAIL_KUBERNETES__IMAGE"] == driver_container()["image"] == "lakehouse:0.1.0"
    assert from_target["SAIL_KUBERNETES__WORKER_SERVICE_ACCOUNT_NAME"] == "lakehouse-worker"
    field_refs = {
        name: e["valueFrom"]["fieldRef"]["fieldPath"]
        for name, e in from_pod.items()
        if "valueFrom" in e
    }
    assert field_refs == {
        "SAIL_CLUSTER__DRIVER_EXTERNAL_HOST": "status.podIP",
        "SAIL_KUBERNETES__DRIVER_POD_NAME": "metadata.name",
        "SAIL_KUBERNETES__NAMESPACE": "metadata.namespace",
    }
    assert from_pod["SAIL_CLUSTER__DRIVER_LISTEN_HOST"]["value"] == "0.0.0.0"


def test_driver_may_manage_worker_pods_and_workers_exist() -> None:
    all_ = resources()
    job = all_[("Job", "lakehouse-demo")]
    pod = job["spec"]["template"]["spec"]
    binding = all_[("RoleBinding", "lakehouse-sail-workers")]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "lakehouse"}
    ]
    role = all_[("Role", binding["roleRef"]["name"])]
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["pods"],
            "verbs": ["create", "get", "list", "watch", "delete", "deletecollection"],
        }
    ]
    worker_sa = k8s_target_engine().kubernetes.worker_service_account_name
    assert all_[("ServiceAccount", worker_sa)]["automountServiceAccountToken"] is False
    assert {doc["metadata"].get("namespace", "lakehouse") for doc in all_.values()} == {"lakehouse"}


def test_driver_and_workers_mount_the_same_volume_at_data_root() -> None:
    project = load_project(ROOT, target="k8s")
    worker = project.engine.kubernetes.worker_pod_template["spec"]
    driver = resources()[("Job", "lakehouse-demo")]["spec"]["template"]["spec"]
    pvc = resources()[("PersistentVolumeClaim", "lakehouse-data")]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    for spec in (driver, worker):
        assert spec["volumes"] == [
            {"name": "data", "persistentVolumeClaim": {"claimName": "lakehouse-data"}}
        ]
        assert spec["containers"][0]["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
        assert spec["containers"][0]["resources"] == {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"memory": "4Gi"},
        }
    assert driver["securityContext"] == worker["securityContext"]
    assert str(project.data_root) == "/data"


def test_the_driver_runs_a_job_of_the_k8s_target() -> None:
    container = driver_container()
    assert container["command"] == ["lakehouse"]
    assert container["args"] == ["bundle", "run", "demo", "--target", "k8s"]
    assert container["workingDir"] == "/opt/lakehouse"  # the Dockerfile's WORKDIR
    project = load_project(ROOT, target="k8s")
    assert "demo" in project.bundle.resources.jobs


def test_the_k8s_target_without_a_kubernetes_api_fails_at_once(tmp_path: Path) -> None:
    """Outside a pod and without a kubeconfig, Sail would retry starting workers for minutes;
    the run stops before the engine starts, with one line."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST") and not k.startswith("LAKEHOUSE_")
    }
    env["HOME"] = str(tmp_path)  # no ~/.kube/config
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lakehouse.cli",
            "bundle",
            "run",
            "demo",
            "-t",
            "k8s",
            "--var",
            f"data_root={tmp_path / 'data'}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: Sail kubernetes-cluster mode starts worker pods through the Kubernetes API, and "
        "none is configured here: run the driver in a pod (deploy/kubernetes/job.yaml) or set "
        "KUBECONFIG"
    ]


def test_kubernetes_api_check_passes_in_a_pod_or_with_a_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakehouse.core.errors import EngineError
    from lakehouse.engine import require_kubernetes_api

    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    require_kubernetes_api({"SAIL_MODE": "local-cluster"})  # other modes: no check
    with pytest.raises(EngineError, match="Sail k8s_cluster mode starts worker pods"):
        require_kubernetes_api({"SAIL_MODE": "k8s_cluster"})  # Sail's other names too
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")  # what a pod has
    require_kubernetes_api({"SAIL_MODE": "kubernetes-cluster"})
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text("apiVersion: v1\nkind: Config\n")
    require_kubernetes_api({"SAIL_MODE": "kubernetes-cluster"})
