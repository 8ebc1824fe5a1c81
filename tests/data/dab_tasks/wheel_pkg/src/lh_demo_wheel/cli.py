"""Entry points of the test wheel: plain PySpark, arguments from sys.argv."""

import argparse
import json
import sys
from pathlib import Path

from pyspark.sql import SparkSession


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--table", required=True)
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--out", required=True)
    args, rest = parser.parse_known_args()
    spark = SparkSession.builder.getOrCreate()
    spark.range(args.rows).write.format("delta").mode("overwrite").saveAsTable(args.table)
    with Path(args.out).open("w") as f:
        json.dump({"argv": sys.argv, "rest": rest}, f)
    sys.exit(0)


def fail() -> None:
    sys.exit(2)
