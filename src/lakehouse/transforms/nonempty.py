"""Emptiness tests of array and map columns built from functions every engine runs on its
workers: Sail's cluster mode has no ``cardinality`` / ``array_length`` / ``map_keys`` on its
workers (``size(x) > 0`` fails a write there; a lambda of ``exists`` fails to resolve a column
in some plans), so these compare the column's JSON text with ``[]`` / ``{}`` instead of
``F.size(x) > 0`` (the same NULL for a NULL column)."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


def has_elements(array: Column | str) -> Column:
    """``size(array) > 0``: true when the array has an element, NULL for a NULL array."""
    column = F.col(array) if isinstance(array, str) else array
    return F.to_json(column) != F.lit("[]")


def has_entries(mapping: Column | str) -> Column:
    """``size(map) > 0``: true when the map has an entry, NULL for a NULL map."""
    column = F.col(mapping) if isinstance(mapping, str) else mapping
    return F.to_json(column) != F.lit("{}")
