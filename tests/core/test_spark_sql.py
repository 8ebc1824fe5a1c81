"""Spark SQL parsed once, the same way for queries and row filter predicates."""

from __future__ import annotations

import logging

import pytest
from sqlglot import exp
from sqlglot.errors import SqlglotError

from lakehouse.core.spark_sql import parse_spark


def test_statements_in_spark_dialect() -> None:
    trees = parse_spark("SELECT `a b` FROM t; SELECT 1")
    assert [type(t) for t in trees] == [exp.Select, exp.Select]
    assert trees[0].sql(dialect="spark") == "SELECT `a b` FROM t"


def test_a_syntax_error_raises_and_the_level_is_restored() -> None:
    logger = logging.getLogger("sqlglot")
    before = logger.level
    with pytest.raises(SqlglotError):
        parse_spark("SELECT (1")
    assert logger.level == before
