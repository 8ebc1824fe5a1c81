"""lakehouse: a Databricks-style medallion lakehouse job bundle on open-source Spark."""

from __future__ import annotations

__version__ = "0.1.0"
