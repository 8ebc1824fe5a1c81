# Databricks notebook source
dbutils.notebook.exit("done early")

# COMMAND ----------

raise RuntimeError("never reached")
