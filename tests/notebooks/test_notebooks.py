"""The notebooks under notebooks/ run top to bottom against the demo data (as CI runs them).

The demo job runs once through the CLI into a temporary data root; each notebook is then
executed by a real Jupyter kernel (nbclient + ipykernel) from the notebooks/ directory, as an
analyst would open it, with ``LAKEHOUSE_VAR_data_root`` pointing at that data. A failing cell
fails the test with the cell's error. In the JVM invocation (``--engine spark``) the kernels
open the same tables on JVM Spark + delta-spark (``LAKEHOUSE_ENGINE=spark``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
CLEARED = ("LAKEHOUSE_", "PYSPARK_", "SPARK_CONNECT", "SPARK_REMOTE", "MLFLOW_")
KEPT = ("LAKEHOUSE_DELTA_JARS",)

pytestmark = pytest.mark.delta


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Run the demo job once (the repository's bundle, a temporary data root)."""
    data_root = tmp_path_factory.mktemp("notebook-demo") / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED)}
    env["LAKEHOUSE_VAR_data_root"] = str(data_root)
    env["LAKEHOUSE_VAR_sample_api_port"] = str(_free_port())
    done = subprocess.run(
        [LAKEHOUSE, "run", "demo", "--project-dir", str(REPO)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    yield data_root


def test_the_notebooks_are_committed_without_outputs() -> None:
    books = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert [b.name for b in books] == [
        "01_explore_medallion.ipynb",
        "02_compare_models.ipynb",
        "03_access_and_lineage.ipynb",
    ]
    for path in books:
        book = nbformat.read(path, as_version=4)
        code = [c for c in book.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), path.name
        assert "parameters" in code[0].metadata.get("tags", []), path.name


@pytest.mark.e2e
@pytest.mark.parametrize(
    "name", ["01_explore_medallion", "02_compare_models", "03_access_and_lineage"]
)
def test_a_notebook_runs_top_to_bottom_against_the_demo_data(
    name: str, demo_data: Path, monkeypatch: pytest.MonkeyPatch, engine_name: str
) -> None:
    for key in list(os.environ):
        if key.startswith(CLEARED) and key not in KEPT:
            monkeypatch.delenv(key)
    monkeypatch.setenv("LAKEHOUSE_VAR_data_root", str(demo_data))
    monkeypatch.setenv("LAKEHOUSE_ENGINE", engine_name)
    book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        book,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    try:
        client.execute()
    except CellExecutionError as exc:  # the cell's source and traceback, not the kernel's
        pytest.fail(f"{name}: {exc}", pytrace=False)
    finally:
        # keep the executed copy for a human to look at (CI artifact), never in the repo
        out = Path(os.environ.get("LAKEHOUSE_TEST_ARTIFACTS", REPO / "build" / "test-artifacts"))
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(book, out / f"{name}-{engine_name}.ipynb")
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert len(outputs) >= 5
