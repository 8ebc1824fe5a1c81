"""Apache Spark's own declarative-pipelines runner, as a reference to test ours against.

``run_reference_pipeline(pipeline_dir, tmp_path)`` writes a ``spark-pipelines`` spec for a
folder of pipeline sources, runs ``spark-pipelines run --spec …`` (JVM Spark 4.2, Spark
Connect, Parquet tables in a fresh warehouse) in a subprocess and reads every table it
wrote back with pyarrow: no JVM or Spark session in this process, so it runs in the
embedded-engine pytest invocation.

``portable_pipeline(project_dir, dest)`` builds, from the Databricks project's own pipeline
sources, the variant Apache Spark can run (see ``tests/data/dab_project_portable/README.md``).

``assert_tables_equal(ours, reference)`` compares two ``{table: rows}`` results as sets of
rows (order-free), values compared by value (``Decimal("1.50") == Decimal("1.5")``).

Measured facts (pyspark 4.2.0, Java 17, 2 shared cores):

* the spec needs ``storage`` as an absolute URI (``file:///…``), else
  ``PIPELINE_STORAGE_ROOT_INVALID``; a ``database`` other than ``default`` must exist
  (``SCHEMA_NOT_FOUND``), and the catalog is in memory, so the reference uses ``default``
  and runs one update per fresh folder (a second run in the same folder fails with
  ``LOCATION_ALREADY_EXISTS``);
* the runner *does* inject ``spark`` into pipeline Python files (pyspark 4.2.0 ``cli.py``);
* SQL: ``CREATE OR REFRESH`` is a syntax error (``CREATE MATERIALIZED VIEW`` / ``CREATE
  STREAMING TABLE`` only) and ``CREATE FLOW … AS AUTO CDC INTO`` is a syntax error;
* ``dp.create_auto_cdc_flow`` (SCD type 1) registers, but the server refuses Parquet and
  Delta 4.4.0 targets: ``AUTOCDC_TARGET_DOES_NOT_SUPPORT_MERGE`` (it needs a DSv2 table
  with row-level operations);
* ``@dp.expect*`` do not exist in ``pyspark.pipelines``; Auto Loader (``cloudFiles``) does
  not exist either (``readStream.format("json")`` with a schema does);
* the portable test bundle (7 datasets, 24 order rows) takes 50 s wall on an idle-ish
  machine, 80-130 s at load 11-12 (at 80 s: 19 s JVM + Connect session start, 37 s the
  flows).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

VENV_BIN = Path(sys.executable).parent
SPARK_PIPELINES = VENV_BIN / "spark-pipelines"
REFERENCE_TIMEOUT_S = 600
# quick settings for a handful of rows on a small machine
SUBMIT_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.sql.session.timeZone": "UTC",
}
PORTABLE_MARKER = "Databricks-only"

# the last run's wall time in seconds (for reports and the docs)
last_run_seconds: float | None = None


def write_spec(
    pipeline_dir: Path,
    tmp_path: Path,
    *,
    configuration: Mapping[str, str] | None = None,
    name: str = "reference",
) -> Path:
    """Write ``spark-pipeline.yml`` into ``pipeline_dir``: its sources are the files under
    ``pipeline_dir/transformations`` (Apache accepts only ``folder/**`` globs, relative to
    the spec); ``storage`` is an absolute ``file://`` URI (a plain path is refused)."""
    if not (pipeline_dir / "transformations").is_dir():
        raise FileNotFoundError(f"no transformations/ folder in {pipeline_dir}")
    spec = {
        "name": name,
        "storage": (tmp_path / "storage").resolve().as_uri(),
        "configuration": dict(configuration or {}),
        "libraries": [{"glob": {"include": "transformations/**"}}],
    }
    path = pipeline_dir / "spark-pipeline.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run_reference_pipeline(
    pipeline_dir: Path,
    tmp_path: Path,
    *,
    configuration: Mapping[str, str] | None = None,
    timeout_s: float = REFERENCE_TIMEOUT_S,
) -> dict[str, list[tuple[Any, ...]]]:
    """Run ``pipeline_dir`` with Apache Spark's ``spark-pipelines run`` and return every
    table it wrote as ``{name: sorted rows}``.

    ``pipeline_dir`` holds a ``transformations/`` folder; its top level is put on
    ``PYTHONPATH`` (the ``root_path`` of a Databricks pipeline). ``--conf`` values reach the
    session as runtime confs only (``spark-pipelines`` starts a local Connect server).
    Tables go to ``spark_catalog.default`` in ``tmp_path/spark-warehouse`` (the server
    ignores ``--conf spark.sql.warehouse.dir``: measured).
    """
    global last_run_seconds
    spec = write_spec(pipeline_dir, tmp_path, configuration=configuration)
    warehouse = tmp_path / "spark-warehouse"  # relative to the working directory
    command = [str(SPARK_PIPELINES)]
    for key, value in SUBMIT_CONF.items():
        command += ["--conf", f"{key}={value}"]
    command += ["run", "--spec", str(spec)]
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONPATH": str(pipeline_dir.resolve()),
    }
    env.pop("SPARK_HOME", None)
    env.pop("PYSPARK_GATEWAY_PORT", None)
    started = time.monotonic()
    done = subprocess.run(
        command,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    last_run_seconds = time.monotonic() - started
    (tmp_path / "spark-pipelines.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise AssertionError(
            f"spark-pipelines run failed (exit {done.returncode}); log: "
            f"{tmp_path / 'spark-pipelines.log'}\n{_error_lines(done.stdout + done.stderr)}"
        )
    return read_warehouse(warehouse)


_portable_cache: dict[str, dict[str, list[tuple[Any, ...]]]] = {}


def portable_reference_tables(
    project_dir: Path, tmp_path: Path
) -> dict[str, list[tuple[Any, ...]]]:
    """The test bundle's portable pipeline run by Apache Spark, once per process (about a
    minute): build the portable sources, land the fixtures with the bundle's notebook, run
    ``spark-pipelines``. Later calls return the first result (``tmp_path`` is used once)."""
    key = str(project_dir.resolve())
    if key not in _portable_cache:
        pipeline = portable_pipeline(project_dir, tmp_path / "pipeline")
        land_with_notebook(project_dir, tmp_path / "landing")
        _portable_cache[key] = run_reference_pipeline(
            pipeline,
            tmp_path,
            configuration={"coffee_shop.landing_path": str((tmp_path / "landing").resolve())},
        )
    return _portable_cache[key]


def _error_lines(log: str) -> str:
    keep = [ln for ln in log.splitlines() if "Error" in ln or "Exception" in ln]
    return "\n".join(keep[-10:])


def read_warehouse(warehouse: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every Parquet table folder of a Spark warehouse as ``{table: sorted rows}``."""
    import pyarrow.parquet as pq

    tables: dict[str, list[tuple[Any, ...]]] = {}
    for folder in sorted(p for p in warehouse.rglob("*") if p.is_dir()):
        if not any(f.suffix == ".parquet" for f in folder.iterdir()):
            continue
        table = pq.read_table(folder)
        rows = [tuple(row.values()) for row in table.to_pylist()]
        name = folder.name if folder.parent == warehouse else f"{folder.parent.stem}.{folder.name}"
        tables[name] = sorted_rows(rows)
    return tables


def sorted_rows(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows in a stable order (``None`` first, values of mixed types by their text)."""
    return sorted((tuple(r) for r in rows), key=lambda r: [_sort_key(v) for v in r])


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return (1, Decimal(str(value)))
    return (2, str(value))


def canonical(value: Any) -> Any:
    """A value in the form both sides compare equal in (Decimal for numbers, ISO text for
    dates and timestamps)."""
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float | Decimal):
        number = Decimal(str(value))
        return int(number) if number == number.to_integral_value() else number.normalize()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def assert_tables_equal(
    ours: Mapping[str, Sequence[Sequence[Any]]],
    reference: Mapping[str, Sequence[Sequence[Any]]],
    *,
    tables: Sequence[str] | None = None,
) -> None:
    """Assert two runs wrote the same tables with the same rows (order-free).

    ``tables`` limits the comparison to those names (both sides must have each); without
    it, both sides must have exactly the same table names.
    """
    names = list(tables) if tables is not None else sorted(reference)
    if tables is None:
        assert sorted(ours) == sorted(reference), (
            f"tables differ: ours {sorted(ours)}, reference {sorted(reference)}"
        )
    problems = []
    for name in names:
        assert name in ours, f"table {name} missing from ours ({sorted(ours)})"
        assert name in reference, f"table {name} missing from the reference ({sorted(reference)})"
        mine = sorted_rows([tuple(canonical(v) for v in r) for r in ours[name]])
        theirs = sorted_rows([tuple(canonical(v) for v in r) for r in reference[name]])
        if mine != theirs:
            only_ours = [r for r in mine if r not in theirs]
            only_ref = [r for r in theirs if r not in mine]
            problems.append(
                f"{name}: {len(mine)} rows vs {len(theirs)}; only ours {only_ours[:5]}, "
                f"only reference {only_ref[:5]}"
            )
    assert not problems, "tables differ:\n" + "\n".join(problems)


def portable_pipeline(project_dir: Path, dest: Path, *, package: str = "coffee_shop_etl") -> Path:
    """Build the portable variant of a bundle's pipeline sources in ``dest`` and return it.

    Copies ``src/<package>/`` (``transformations/`` and the helper modules), leaves out files
    marked ``Databricks-only`` on their first lines, adds the stand-ins from
    ``tests/data/dab_project_portable/*.py`` and removes the Databricks-only syntax.
    """
    source = project_dir / "src" / package
    replacements = project_dir.parent / "dab_project_portable"
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
    for path in sorted(dest.rglob("*")):
        if path.suffix not in {".py", ".sql"}:
            continue
        text = path.read_text()
        if PORTABLE_MARKER in "\n".join(text.splitlines()[:2]):
            path.unlink()
            continue
        path.write_text(_portable_py(text) if path.suffix == ".py" else _portable_sql(text))
    for stand_in in sorted(replacements.glob("*.py")):
        shutil.copy(stand_in, dest / "transformations" / stand_in.name)
    return dest


class _Widgets:
    """``dbutils.widgets`` as a notebook task passes ``base_parameters``: plain values."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def text(self, name: str, default: str, label: str | None = None) -> None:
        self._values.setdefault(name, default)

    def get(self, name: str) -> str:
        return self._values[name]


def land_with_notebook(project_dir: Path, landing_path: Path) -> None:
    """Run the code cells of the bundle's landing notebook (``src/notebook.ipynb``, pure
    Python) with ``landing_path`` as its widget: the job's first task, without Spark."""
    import json
    from types import SimpleNamespace

    notebook = json.loads((project_dir / "src" / "notebook.ipynb").read_text())
    namespace: dict[str, Any] = {
        "dbutils": SimpleNamespace(widgets=_Widgets({"landing_path": str(landing_path)}))
    }
    previous = Path.cwd()
    os.chdir(project_dir / "src")  # a notebook runs in its own folder, as on Databricks
    try:
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                exec("".join(cell["source"]), namespace)
    finally:
        os.chdir(previous)


def _portable_py(text: str) -> str:
    lines = [ln for ln in text.splitlines() if not re.match(r"\s*@dp\.expect", ln)]
    lines = [ln for ln in lines if 'option("cloudFiles.format", "json")' not in ln]
    return "\n".join(lines).replace('.format("cloudFiles")', '.format("json")') + "\n"


def _portable_sql(text: str) -> str:
    text = re.sub(r"CREATE\s+OR\s+REFRESH\s+", "CREATE ", text)
    # a column list holding only constraints: "name (\n CONSTRAINT …,\n CONSTRAINT …\n)"
    text = re.sub(r"\s*\(\s*(?:CONSTRAINT\b[^\n]*\n\s*)+\)", "", text)
    assert "CONSTRAINT" not in text, f"a CONSTRAINT clause left in:\n{text}"
    return text
