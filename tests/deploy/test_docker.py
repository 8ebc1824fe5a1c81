"""deploy/docker/Dockerfile, checked without docker (none here): what it copies exists and is
in the build context, the wheel it installs builds, the commands the pods run are console
scripts of what it installs, and its Python is the project's."""

from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
IMAGE = "lakehouse:0.1.0"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (DOCKER / "Dockerfile").read_text())
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def context_sources() -> list[str]:
    """What the Dockerfile copies from the build context (the repository root)."""
    sources = []
    for op, args in instructions():
        words = shlex.split(args)
        if op == "COPY" and not any(w.startswith("--from=") for w in words):
            sources += words[:-1]
    return sources


def ignored(path: str) -> bool:
    """Whether Dockerfile.dockerignore leaves ``path`` out of the context (last match wins)."""
    verdict = False
    for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate, pattern = line.startswith("!"), line.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.split("/")[0], pattern):
            verdict = not negate
    return verdict


def test_what_it_copies_exists_and_is_in_the_context() -> None:
    assert context_sources() == [
        "pyproject.toml",
        "README.md",
        "src",
        "constraints.txt",
        "bundle.yml",
        "conf",
        "jobs",
    ]
    for source in context_sources():
        assert (ROOT / source).exists(), source
        assert not ignored(source), source
    assert ignored(".venv") and ignored("tests") and ignored("data")


def test_its_python_is_the_projects() -> None:
    bases = [args for op, args in instructions() if op == "FROM"]
    assert bases == ["python:3.11-slim AS wheel", "python:3.11-slim"]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11,<3.12"
    assert sys.version_info[:2] == (3, 11)


def test_the_pods_commands_are_console_scripts_it_installs() -> None:
    """The driver Job runs `lakehouse`; Sail starts its workers with `sail worker` (pysail)."""
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts["lakehouse"] == "lakehouse.cli:main"
    assert scripts["sail"].startswith("pysail")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"lakehouse": "lakehouse.cli:main"}
    assert any(d.startswith("pysail==") for d in project["dependencies"])
    workdir = [args for op, args in instructions() if op == "WORKDIR"][-1]
    job = yaml.safe_load((ROOT / "deploy" / "kubernetes" / "job.yaml").read_text())
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["workingDir"] == workdir == "/opt/lakehouse"
    assert container["command"] == ["lakehouse"]


def test_the_image_name_is_the_same_everywhere() -> None:
    header = (DOCKER / "Dockerfile").read_text()
    assert f"docker build -f deploy/docker/Dockerfile -t {IMAGE} ." in header
    bundle = yaml.safe_load((ROOT / "bundle.yml").read_text())
    assert bundle["variables"]["k8s_image"]["default"] == IMAGE
    job = yaml.safe_load((ROOT / "deploy" / "kubernetes" / "job.yaml").read_text())
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE


def test_the_wheel_it_installs_builds(tmp_path: Path) -> None:
    """The image's first stage builds the project's wheel (hatchling, as pip wheel would);
    the spark-submit recipe ships the same file with --py-files."""
    done = subprocess.run(
        [sys.executable, "-m", "uv", "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("*.whl")
    assert wheel.name == "lakehouse-0.1.0-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    assert "lakehouse/cli/__init__.py" in names
    assert "lakehouse/bundle/entrypoint.py" in names
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "lakehouse = lakehouse.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
