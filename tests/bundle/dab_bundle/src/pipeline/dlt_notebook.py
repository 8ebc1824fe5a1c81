# Databricks notebook source
from pyspark import pipelines as dp


@dp.materialized_view
def from_notebook():
    return spark.range(2)  # noqa: F821
