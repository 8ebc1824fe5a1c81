"""The effective schema of a table: catalog type strings, planned changes, merged columns."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import types as T

from lakehouse.config.catalog import Column, TableSpec
from lakehouse.config.project import TableRef
from lakehouse.io.table_schema import effective_columns, plan_changes, spark_type


def test_spark_type_reads_catalog_type_strings() -> None:
    assert spark_type("bigint") == T.LongType()
    assert spark_type("Decimal(10, 2)") == T.DecimalType(10, 2)
    assert spark_type("map<string,array<int>>") == T.MapType(
        T.StringType(), T.ArrayType(T.IntegerType())
    )
    assert spark_type("struct<a:int,b:decimal(3,1)>") == T.StructType(
        [T.StructField("a", T.IntegerType()), T.StructField("b", T.DecimalType(3, 1))]
    )


def test_plan_changes_adds_widens_and_refuses() -> None:
    existing = T.StructType(
        [
            T.StructField("a", T.IntegerType()),
            T.StructField("b", T.StringType()),
            T.StructField("c", T.LongType()),
        ]
    )
    wanted = T.StructType(
        [
            T.StructField("a", T.LongType()),
            T.StructField("b", T.IntegerType()),
            T.StructField("c", T.IntegerType()),  # undeclared, fits the wider column
            T.StructField("d", T.DateType()),
        ]
    )
    changes = plan_changes(existing, wanted, {"a", "b"})
    assert [f.name for f in changes.added] == ["d"]
    assert changes.widened == [("a", T.IntegerType(), T.LongType())]
    assert changes.unsafe == [("b", T.StringType(), T.IntegerType())]


def test_effective_columns_merge_the_log_with_the_declarations(tmp_path: Path) -> None:
    spec = TableSpec(
        layer="gold",
        columns=[
            Column(name="n", type="bigint", comment="count", tags=["kpi"]),
            Column(name="later", type="string"),
        ],
    )
    ref = TableRef("c", "gold", "t", spec, str(tmp_path / "none"))
    assert effective_columns(ref) == spec.columns  # no table yet: the declarations
    schema = T.StructType(
        [T.StructField("k", T.StringType(), False), T.StructField("n", T.LongType())]
    )
    columns = effective_columns(ref, schema)
    assert [(c.name, c.type, c.nullable, c.comment, c.tags) for c in columns] == [
        ("k", "string", False, "", []),
        ("n", "bigint", True, "count", ["kpi"]),
        ("later", "string", True, "", []),
    ]
