"""Fixtures shared with other test packages: the demo run of tests/governance."""

from __future__ import annotations

from tests.governance.conftest import demo_run

__all__ = ["demo_run"]
