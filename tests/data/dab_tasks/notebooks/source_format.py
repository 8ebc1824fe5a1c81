# Databricks notebook source
# MAGIC %md
# MAGIC # Source-format notebook
# MAGIC Reads the rows the .ipynb notebook wrote, labels them, writes another table.

# COMMAND ----------

# MAGIC %pip install some-package-we-do-not-install

# COMMAND ----------

# MAGIC %run ./helpers

# COMMAND ----------

dbutils.widgets.text("label", "unlabelled")
label = dbutils.widgets.get("label")
upstream = dbutils.jobs.taskValues.get(taskKey="nb_ipynb", key="rows", default=-1)
rows = spark.table("nb_ipynb_rows")
labelled(rows, label).write.format("delta").mode("overwrite").saveAsTable("nb_source_rows")

# COMMAND ----------

# MAGIC %sql
# MAGIC CREATE OR REPLACE TEMPORARY VIEW nb_source_view AS SELECT * FROM nb_source_rows;
# MAGIC SELECT count(*) AS n FROM nb_source_view

# COMMAND ----------

assert _sqldf.collect()[0]["n"] == upstream, (_sqldf.collect(), upstream)
dbutils.jobs.taskValues.set("label", label)
