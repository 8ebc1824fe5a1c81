"""``lakehouse ui``: its argument checks and help, without starting the app."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lakehouse.cli import app as cli


@pytest.mark.parametrize(
    ("args", "message"),
    [(["ui", "nope"], "no model 'nope' in conf/"), (["ui", "--help"], "--serving-url")],
)
def test_the_ui_command(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, [*args, "-C", "."] if "--help" not in args else args)
    assert message in (result.output + str(result.exception)), result.output
