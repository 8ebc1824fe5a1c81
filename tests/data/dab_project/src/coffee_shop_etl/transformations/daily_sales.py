from pyspark import pipelines as dp
from pyspark.sql import functions as F


@dp.materialized_view(comment="Gold: sales per day.")
def daily_sales():
    return (
        spark.read.table("valid_orders")
        .groupBy("order_date")
        .agg(
            F.count("*").alias("orders"),
            F.sum("quantity").alias("units"),
            F.sum("revenue").alias("revenue"),
        )
    )
