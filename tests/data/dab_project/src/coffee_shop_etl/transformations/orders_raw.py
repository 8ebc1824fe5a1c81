from pyspark import pipelines as dp
from utilities.feeds import ORDERS_SCHEMA, landing_path


@dp.table(comment="Orders as they land: one row per order line, from the JSON drop folder.")
@dp.expect("positive_quantity", "quantity > 0")
@dp.expect_or_drop("has_customer", "customer_id IS NOT NULL")
@dp.expect_or_fail("has_order_id", "order_id IS NOT NULL")
def orders_raw():
    return (
        spark.readStream.format("cloudFiles")
        .option("cloudFiles.format", "json")
        .schema(ORDERS_SCHEMA)
        .load(landing_path(spark, "orders"))
    )
