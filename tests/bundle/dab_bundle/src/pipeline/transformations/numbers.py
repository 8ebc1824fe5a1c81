from pyspark import pipelines as dp


@dp.materialized_view
def numbers():
    return spark.range(5)  # noqa: F821
