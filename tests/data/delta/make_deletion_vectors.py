"""How ``tests/data/delta/deletion_vectors`` was made (run once; the table is committed).

JVM Spark 4.0 + delta-spark 4.0.1 (the jars of ``make jars`` in ``build/jars/delta``)::

    LAKEHOUSE_DELTA_JARS=build/jars/delta python tests/data/delta/make_deletion_vectors.py OUT

Version 0 creates the table with ``delta.enableDeletionVectors=true``, version 1 inserts five
rows in one file, version 2 deletes ids 2 and 4, which delta-spark records as a deletion
vector on that file (no rewrite). Readers without deletion-vector support see five rows at
the latest version; a correct reader sees ids 1, 3, 5 (and all five at version 1). The
Hadoop ``.crc`` side files and the ``.crc`` version checksums were left out.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from pyspark.sql import SparkSession


def main(out: str) -> None:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    shutil.rmtree(out, ignore_errors=True)
    jars = ",".join(sorted(str(j) for j in Path(os.environ["LAKEHOUSE_DELTA_JARS"]).glob("*.jar")))
    spark = (
        SparkSession.builder.master("local[1]")
        .config("spark.jars", jars)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    spark.sql(
        f"CREATE TABLE delta.`{out}` (id INT, email STRING, amount DOUBLE) USING delta "
        "TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')"
    )
    spark.sql(
        f"INSERT INTO delta.`{out}` VALUES (1, 'ann@example.com', 10.5), "
        "(2, 'bob@example.com', 20.0), (3, 'cy@example.com', 30.25), "
        "(4, 'di@example.com', 40.0), (5, 'ed@example.com', 50.75)"
    )
    spark.sql(f"DELETE FROM delta.`{out}` WHERE id IN (2, 4)")
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
