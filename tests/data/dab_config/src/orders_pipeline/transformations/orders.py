from pyspark import pipelines as dp


@dp.materialized_view
def orders():
    return spark.range(3)  # noqa: F821  (a global on Databricks and in the local runner)
