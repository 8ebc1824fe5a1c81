# Databricks-only: AUTO CDC with SCD type 2 (Apache Spark 4.2 has SCD type 1 only)
from pyspark import pipelines as dp
from utilities.feeds import CUSTOMERS_SCHEMA, landing_path


@dp.temporary_view(comment="The CRM's customer change feed.")
def customers_changes():
    return (
        spark.readStream.format("cloudFiles")
        .option("cloudFiles.format", "json")
        .schema(CUSTOMERS_SCHEMA)
        .load(landing_path(spark, "customers"))
    )


dp.create_streaming_table(
    "customers_history", comment="Every version of every customer (SCD type 2)."
)

dp.create_auto_cdc_flow(
    target="customers_history",
    source="customers_changes",
    keys=["customer_id"],
    sequence_by="sequence_num",
    apply_as_deletes="operation = 'DELETE'",
    except_column_list=["operation", "sequence_num"],
    stored_as_scd_type=2,
)
