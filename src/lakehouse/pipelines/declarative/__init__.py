"""Declarative pipelines (Spark Declarative Pipelines / Lakeflow) run client-side on any engine."""
