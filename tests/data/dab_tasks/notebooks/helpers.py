# Databricks notebook source
# MAGIC %md
# MAGIC Helpers shared with `%run ./helpers`.

# COMMAND ----------


def labelled(df, label):
    from pyspark.sql import functions as F

    return df.withColumn("label", F.lit(label))
