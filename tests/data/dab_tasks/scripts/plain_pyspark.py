"""A plain PySpark script: no lakehouse import, session from the builder."""

import json
import sys
from pathlib import Path

from pyspark.sql import SparkSession


def main() -> None:
    spark = SparkSession.builder.appName("plain").getOrCreate()
    target, out = sys.argv[1], sys.argv[2]
    same = SparkSession.getActiveSession() is spark
    spark.range(5).selectExpr("id", "id * 10 AS tens").write.format("delta").mode(
        "overwrite"
    ).saveAsTable(target)
    with Path(out).open("w") as f:
        json.dump({"argv": sys.argv[1:], "active_is_builder": same, "name": __name__}, f)
    spark.stop()  # as scripts often do: the run's session must survive it


if __name__ == "__main__":
    main()
