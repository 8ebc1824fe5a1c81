from pyspark import pipelines as dp
from utilities.feeds import PRODUCTS_SCHEMA, landing_path


@dp.table(comment="The product catalogue's change feed (INSERT / UPDATE / DELETE rows).")
def products_changes():
    return (
        spark.readStream.format("cloudFiles")
        .option("cloudFiles.format", "json")
        .schema(PRODUCTS_SCHEMA)
        .load(landing_path(spark, "products"))
    )
