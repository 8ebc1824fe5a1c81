"""Data quality: great-expectations rules, checked on every engine in one pass.

How it works, and why:

* **Rules are written as GX expectations** (``type`` + ``kwargs``, great-expectations'
  own names) or as a Spark SQL boolean that is TRUE for good rows (``rules.Rule``).
* **Rows are identified by compiling each rule to Spark SQL** (``rules.row_condition``):
  ``validate.flag_violations`` adds an ``array<string>`` column ``_violations`` with the
  rules each row breaks, in one projection, and ``validate.evaluate_rules`` counts every
  rule with one aggregate query. This runs on Sail, Spark Connect and classic JVM Spark
  alike. GX cannot do it: its ``unexpected_index_query`` is not valid SQL on Spark
  Connect, and it computes one query per metric.
* **GX validates the same data** (``validate.validate_with_gx``) for its results and its
  Data Docs HTML, and **the counts of both are cross-checked** (``validate.cross_check``
  raises ``QualityCrossCheckError`` when a rule's evaluated or failed rows differ), so the
  compiled SQL cannot drift from GX's semantics unnoticed.
"""

from __future__ import annotations

# lakehouse.config.models imports lakehouse.quality.rules, which imports lakehouse.config.base:
# load the config package first, so importing this package first does not hit a partially
# initialised lakehouse.config.
import lakehouse.config  # noqa: F401
