"""``lakehouse build``, ``table reset`` and the catalog <-> Delta checks of ``bundle validate``
and ``catalog validate``, end to end through the command (real Sail and Delta)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lakehouse.io.table_schema import delta_schema
from tests.pipelines.test_schema_evolution import FIRST, _columns, _land, _write_conf

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
UNSAFE = (
    "error: c.gold.totals: column n is string in the table but int now, which is not a safe "
    "widening; rebuild it with `lakehouse build c.gold.totals --full-refresh`"
)


def _lakehouse(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env["COLUMNS"] = "400"  # one error line, not wrapped
    return subprocess.run(
        [LAKEHOUSE, *args, "-C", str(root)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_build_validate_reset_and_rebuild(tmp_path: Path) -> None:
    project = _write_conf(tmp_path, gold=_columns("{name: n, type: string}"))
    _land(project, "a.jsonl", FIRST)
    for command in ("ingest", "refine", "build"):
        done = _lakehouse(tmp_path, command)
        assert done.returncode == 0, done.stdout + done.stderr
    location = project.table("c.gold.totals").location
    schema = delta_schema(location)
    assert schema is not None and schema["n"].dataType.simpleString() == "string"

    _write_conf(tmp_path, gold=_columns("{name: n, type: int}"))
    for command in (("bundle", "validate"), ("catalog", "validate")):
        checked = _lakehouse(tmp_path, *command)
        assert checked.returncode == 1
        assert checked.stderr.strip() == UNSAFE
    built = _lakehouse(tmp_path, "build", "totals")
    assert built.returncode == 1
    assert built.stderr.strip() == f"error: build of c.gold.totals failed: {UNSAFE[7:]}"

    refused = _lakehouse(tmp_path, "table", "reset", "c.gold.totals")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: table reset c.gold.totals deletes its data: pass --yes to confirm"
    )
    reset = _lakehouse(tmp_path, "table", "reset", "c.gold.totals", "--yes")
    assert reset.returncode == 0, reset.stderr
    assert "c.gold.totals: data deleted" in reset.stdout
    assert delta_schema(location) is None

    rebuilt = _lakehouse(tmp_path, "build")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    schema = delta_schema(location)
    assert schema is not None and schema["n"].dataType.simpleString() == "int"
    valid = _lakehouse(tmp_path, "bundle", "validate")
    assert valid.returncode == 0, valid.stderr
