"""The notebooks under notebooks/ run top to bottom against the demo data (as CI runs them).

The demo job runs once through the CLI into a temporary data root (the session's
``demo_job_on_sail``, which the JVM demo test compares with too); each notebook is then
executed by a real Jupyter kernel (nbclient + ipykernel) from the notebooks/ directory, as an
analyst would open it, with ``LAKEHOUSE_VAR_data_root`` pointing at that data. A failing cell
fails the test with the cell's error. In the JVM invocation (``--engine spark``) the kernels
open the same tables on JVM Spark + delta-spark (``LAKEHOUSE_ENGINE=spark``).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.conftest import DemoJobRun

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
CLEARED = ("LAKEHOUSE_", "PYSPARK_", "SPARK_CONNECT", "SPARK_REMOTE", "MLFLOW_")
KEPT = ("LAKEHOUSE_DELTA_JARS",)

pytestmark = pytest.mark.delta


@pytest.fixture(scope="module")
def demo_data(demo_job_on_sail: DemoJobRun) -> Path:
    """The demo job's data root: the session's one Sail run of the repository's bundle."""
    return demo_job_on_sail.data_root


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
