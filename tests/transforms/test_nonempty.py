"""Emptiness of array and map columns without size() (Sail's cluster workers lack it)."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from lakehouse.transforms.nonempty import has_elements, has_entries


@pytest.mark.transform
def test_has_elements_and_has_entries_match_size_greater_than_zero(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [
            (1, ["a", "b"], {"k": "v"}),
            (2, [], {}),
            (3, None, None),
            (4, [None], {"k": None}),
        ],
        "id int, arr array<string>, m map<string,string>",
    )
    out = df.select("id", has_elements("arr").alias("a"), has_entries("m").alias("m"))
    assert sorted(tuple(r) for r in out.collect()) == [
        (1, True, True),
        (2, False, False),
        (3, None, None),
        (4, True, True),
    ]
