"""Lineage: the recorder, column lineage from the configuration, OpenLineage and the graph."""
