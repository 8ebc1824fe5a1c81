# The portable stand-in for transformations/products.sql (AUTO CDC SCD type 1), which Apache
# Spark 4.2 cannot run: its SQL has no AUTO CDC and its server applies AUTO CDC only to
# targets with row-level operations (not Parquet, not Delta 4.4.0). Same result as a
# materialized view: the newest change per product, unless that change is a DELETE.
from pyspark import pipelines as dp
from pyspark.sql import Window
from pyspark.sql import functions as F


@dp.materialized_view(comment="The current product catalogue (latest change per product).")
def products():
    newest_first = Window.partitionBy("product_id").orderBy(F.col("sequence_num").desc())
    return (
        spark.read.table("products_changes")
        .withColumn("_rank", F.row_number().over(newest_first))
        .where("_rank = 1 AND operation <> 'DELETE'")
        .select("product_id", "name", "category", "price")
    )
