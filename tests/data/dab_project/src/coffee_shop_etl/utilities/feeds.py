"""The landing feeds the pipeline reads: where they are and their schemas.

The landing folder comes from the pipeline's `configuration` (`coffee_shop.landing_path`),
read with `spark.conf.get`, so dev, prod and a laptop each point at their own files.
"""

ORDERS_SCHEMA = (
    "order_id INT, customer_id INT, product_id STRING, quantity INT, "
    "unit_price DECIMAL(6,2), order_date DATE"
)
PRODUCTS_SCHEMA = (
    "product_id STRING, name STRING, category STRING, price DECIMAL(6,2), "
    "operation STRING, sequence_num BIGINT"
)
CUSTOMERS_SCHEMA = (
    "customer_id INT, name STRING, email STRING, city STRING, operation STRING, sequence_num BIGINT"
)


def landing_path(spark, feed: str) -> str:
    """The folder of one feed's JSON files under the configured landing path."""
    return f"{spark.conf.get('coffee_shop.landing_path').rstrip('/')}/{feed}"
