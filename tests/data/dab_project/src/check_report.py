# Databricks notebook source
# MAGIC %md
# MAGIC # Check the report
# MAGIC
# MAGIC The last task of `coffee_shop_job`: the report the wheel wrote has one row per
# MAGIC requested rank, ranks 1..n, and no category without revenue.

# COMMAND ----------

dbutils.widgets.text("catalog", "main")
dbutils.widgets.text("schema", "coffee_shop")
dbutils.widgets.text("top_n", "2")

catalog = dbutils.widgets.get("catalog")
schema = dbutils.widgets.get("schema")
top_n = int(dbutils.widgets.get("top_n"))

# COMMAND ----------

report = spark.read.table(f"{catalog}.{schema}.top_categories")
ranks = sorted(row["rank"] for row in report.select("rank").collect())
if ranks != list(range(1, top_n + 1)):
    raise ValueError(f"{catalog}.{schema}.top_categories has ranks {ranks}, expected 1..{top_n}")

# COMMAND ----------

empty = report.where("revenue IS NULL OR revenue <= 0").count()
if empty:
    raise ValueError(f"{empty} categories in the report have no revenue")
print(f"report OK: {len(ranks)} categories")
