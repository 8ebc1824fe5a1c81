"""Helpers the Delta tests share on both engines."""

from __future__ import annotations

from pyspark.sql import SparkSession

from lakehouse.engine import EngineKind


def session_engine(spark: SparkSession) -> EngineKind:
    """The engine of a test session: a Spark Connect session is the embedded Sail engine,
    a classic one is JVM Spark with delta-spark (the two test invocations)."""
    return "sail" if type(spark).__module__.startswith("pyspark.sql.connect") else "spark"
