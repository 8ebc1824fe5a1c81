"""Fixtures shared with other test packages: the demo run of tests/catalog."""

from __future__ import annotations

from tests.catalog.conftest import demo_run

__all__ = ["demo_run"]
