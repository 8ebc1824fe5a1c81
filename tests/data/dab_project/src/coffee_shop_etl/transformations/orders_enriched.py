from pyspark import pipelines as dp
from pyspark.sql import functions as F


@dp.materialized_view(comment="Orders with the current product name and category, and revenue.")
@dp.expect_all({"known_product": "product_name IS NOT NULL", "priced": "unit_price > 0"})
def orders_enriched():
    orders = spark.read.table("orders_raw")
    products = spark.read.table("products").select(
        "product_id", F.col("name").alias("product_name"), "category"
    )
    return orders.join(products, "product_id", "left").select(
        "order_id",
        "customer_id",
        "product_id",
        "product_name",
        "category",
        "quantity",
        "unit_price",
        "order_date",
        (F.col("quantity") * F.col("unit_price")).alias("revenue"),
    )
