"""Exact expected results of the test bundle ``tests/data/dab_project`` (see its EXPECTED.md).

Written by hand from the fixture files and checked against an independent pandas
derivation (``derive_dab_expected.py``, ``test_dab_expected.py``); never produced by
running our runner. Rows are tuples in the table's column order (``COLUMNS``); compare
order-free (``tests.pipelines.declarative.reference.assert_tables_equal``).

* ``TABLES``: every persisted dataset after one ``lakehouse bundle run coffee_shop_job``,
  Databricks semantics (expectations, quarantine, AUTO CDC SCD1 and SCD2).
* ``EXPECTATIONS``: per dataset, per expectation: (action, passed rows, failed rows); every
  expectation is evaluated on every input row of its dataset.
* ``QUARANTINE``: the ``order_id`` of the rows each drop-expectation removed.
* ``TOP_CATEGORIES``: the table the wheel task (``coffee_shop.main --top 2``) writes.
* ``DATASETS`` / ``AUTO_CDC_FLOWS``: the dataflow graph (kinds, upstream datasets, files).
* ``PORTABLE``: the portable variant (no expectations, no AUTO CDC, no customers_history)
  on Apache Spark's ``spark-pipelines run`` and on ours.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D  # noqa: N817
from typing import Any

Row = tuple[Any, ...]

COLUMNS: dict[str, tuple[str, ...]] = {
    "orders_raw": ("order_id", "customer_id", "product_id", "quantity", "unit_price", "order_date"),
    "products_changes": ("product_id", "name", "category", "price", "operation", "sequence_num"),
    "products": ("product_id", "name", "category", "price"),
    "customers_history": ("customer_id", "name", "email", "city", "__START_AT", "__END_AT"),
    "orders_enriched": (
        "order_id",
        "customer_id",
        "product_id",
        "product_name",
        "category",
        "quantity",
        "unit_price",
        "order_date",
        "revenue",
    ),
    "valid_orders": (
        "order_id",
        "customer_id",
        "product_id",
        "product_name",
        "category",
        "quantity",
        "unit_price",
        "order_date",
        "revenue",
    ),
    "daily_sales": ("order_date", "orders", "units", "revenue"),
    "sales_by_category": ("category", "orders", "units", "revenue"),
    "top_categories": ("rank", "category", "revenue"),
}

# all 24 landed order lines (fixtures/orders/*.json)
ORDERS: list[Row] = [
    (1, 101, "P1", 2, D("12.00"), date(2026, 11, 1)),
    (2, 102, "P3", 1, D("8.00"), date(2026, 11, 1)),
    (3, None, "P1", 1, D("12.00"), date(2026, 11, 1)),
    (4, 103, "P2", 3, D("10.00"), date(2026, 11, 1)),
    (5, 101, "P5", 1, D("25.00"), date(2026, 11, 1)),
    (6, 104, "P1", 0, D("12.00"), date(2026, 11, 1)),
    (7, 102, "P2", 2, D("10.50"), date(2026, 11, 2)),
    (8, 105, "P4", 2, D("5.00"), date(2026, 11, 2)),
    (9, 103, "P3", 4, D("8.00"), date(2026, 11, 2)),
    (10, 101, "P6", 1, D("30.00"), date(2026, 11, 2)),
    (11, 104, "P1", 1, D("0.00"), date(2026, 11, 2)),
    (12, 105, "P2", 2, D("11.00"), date(2026, 11, 2)),
    (13, 102, "P1", 3, D("12.00"), date(2026, 11, 3)),
    (14, None, "P3", 1, D("9.00"), date(2026, 11, 3)),
    (15, 103, "P6", 1, D("30.00"), date(2026, 11, 3)),
    (16, 101, "P3", 2, D("9.00"), date(2026, 11, 3)),
    (17, 106, "P9", 1, D("4.00"), date(2026, 11, 3)),
    (18, 104, "P2", -1, D("11.00"), date(2026, 11, 3)),
    (19, 105, "P1", 1, D("12.00"), date(2026, 11, 3)),
    (20, 102, "P6", 1, D("30.00"), date(2026, 11, 3)),
    (21, 103, "P1", 2, D("12.00"), date(2026, 11, 3)),
    (22, 101, "P2", 1, D("11.00"), date(2026, 11, 3)),
    (23, 106, "P3", 3, D("9.00"), date(2026, 11, 3)),
    (24, 104, "P1", 2, D("12.00"), date(2026, 11, 3)),
]

# the 11 product changes (fixtures/products/*.json), sorted
PRODUCTS_CHANGES: list[Row] = [
    ("P1", "Espresso beans", "beans", D("12.00"), "INSERT", 1),
    ("P2", "Filter beans", "beans", D("10.00"), "INSERT", 2),
    ("P2", "Filter beans", "beans", D("10.50"), "UPDATE", 6),
    ("P2", "Filter beans", "beans", D("11.00"), "UPDATE", 8),
    ("P3", "Ceramic mug", "merch", D("8.00"), "INSERT", 3),
    ("P3", "Ceramic mug", "merch", D("9.00"), "UPDATE", 10),
    ("P4", None, None, None, "DELETE", 9),
    ("P4", "Tote bag", "merch", D("5.00"), "INSERT", 4),
    ("P5", None, None, None, "DELETE", 12),
    ("P5", "Gift card", "gifts", D("25.00"), "INSERT", 5),
    ("P6", "Cold brew kit", "equipment", D("30.00"), "INSERT", 11),
]

# every order line joined with the current products (no rows dropped)
ENRICHED_ALL: list[Row] = [
    (1, 101, "P1", "Espresso beans", "beans", 2, D("12.00"), date(2026, 11, 1), D("24.00")),
    (2, 102, "P3", "Ceramic mug", "merch", 1, D("8.00"), date(2026, 11, 1), D("8.00")),
    (3, None, "P1", "Espresso beans", "beans", 1, D("12.00"), date(2026, 11, 1), D("12.00")),
    (4, 103, "P2", "Filter beans", "beans", 3, D("10.00"), date(2026, 11, 1), D("30.00")),
    (5, 101, "P5", None, None, 1, D("25.00"), date(2026, 11, 1), D("25.00")),
    (6, 104, "P1", "Espresso beans", "beans", 0, D("12.00"), date(2026, 11, 1), D("0.00")),
    (7, 102, "P2", "Filter beans", "beans", 2, D("10.50"), date(2026, 11, 2), D("21.00")),
    (8, 105, "P4", None, None, 2, D("5.00"), date(2026, 11, 2), D("10.00")),
    (9, 103, "P3", "Ceramic mug", "merch", 4, D("8.00"), date(2026, 11, 2), D("32.00")),
    (10, 101, "P6", "Cold brew kit", "equipment", 1, D("30.00"), date(2026, 11, 2), D("30.00")),
    (11, 104, "P1", "Espresso beans", "beans", 1, D("0.00"), date(2026, 11, 2), D("0.00")),
    (12, 105, "P2", "Filter beans", "beans", 2, D("11.00"), date(2026, 11, 2), D("22.00")),
    (13, 102, "P1", "Espresso beans", "beans", 3, D("12.00"), date(2026, 11, 3), D("36.00")),
    (14, None, "P3", "Ceramic mug", "merch", 1, D("9.00"), date(2026, 11, 3), D("9.00")),
    (15, 103, "P6", "Cold brew kit", "equipment", 1, D("30.00"), date(2026, 11, 3), D("30.00")),
    (16, 101, "P3", "Ceramic mug", "merch", 2, D("9.00"), date(2026, 11, 3), D("18.00")),
    (17, 106, "P9", None, None, 1, D("4.00"), date(2026, 11, 3), D("4.00")),
    (18, 104, "P2", "Filter beans", "beans", -1, D("11.00"), date(2026, 11, 3), D("-11.00")),
    (19, 105, "P1", "Espresso beans", "beans", 1, D("12.00"), date(2026, 11, 3), D("12.00")),
    (20, 102, "P6", "Cold brew kit", "equipment", 1, D("30.00"), date(2026, 11, 3), D("30.00")),
    (21, 103, "P1", "Espresso beans", "beans", 2, D("12.00"), date(2026, 11, 3), D("24.00")),
    (22, 101, "P2", "Filter beans", "beans", 1, D("11.00"), date(2026, 11, 3), D("11.00")),
    (23, 106, "P3", "Ceramic mug", "merch", 3, D("9.00"), date(2026, 11, 3), D("27.00")),
    (24, 104, "P1", "Espresso beans", "beans", 2, D("12.00"), date(2026, 11, 3), D("24.00")),
]

DROPPED_NO_CUSTOMER = {3, 14}  # orders_raw: has_customer (expect_or_drop)
DROPPED_UNKNOWN_PRODUCT = {
    5,
    8,
    17,
}  # valid_orders: known_product (P5, P4 deleted; P9 never existed)
DROPPED_NOT_A_SALE = {6, 18}  # valid_orders: is_sale (quantity 0 and -1)


def _without(rows: list[Row], order_ids: set[int]) -> list[Row]:
    return [r for r in rows if r[0] not in order_ids]


PRODUCTS: list[Row] = [
    ("P1", "Espresso beans", "beans", D("12.00")),
    ("P2", "Filter beans", "beans", D("11.00")),  # seq 8 wins over the late seq 6
    ("P3", "Ceramic mug", "merch", D("9.00")),
    ("P6", "Cold brew kit", "equipment", D("30.00")),
]  # P4 deleted (seq 9), P5 deleted (seq 12)

CUSTOMERS_HISTORY: list[Row] = [
    (101, "Ana", "ana@example.com", "Lisbon", 1, 6),
    (101, "Ana", "ana@example.com", "Porto", 6, 10),
    (101, "Ana", "ana@example.com", "Coimbra", 10, None),
    (102, "Ben", "ben@example.com", "Porto", 2, 11),  # deleted at 11
    (103, "Chloe", "chloe@example.com", "Braga", 3, 7),
    (103, "Chloe", "chloe@old.example.com", "Braga", 7, 8),  # seq 7 arrived after seq 8
    (103, "Chloe", "chloe@new.example.com", "Braga", 8, None),
    (104, "Dev", "dev@example.com", "Faro", 4, 9),  # deleted at 9
    (104, "Dev", "dev@example.com", "Faro", 12, None),  # inserted again at 12
    (105, "Eve", "eve@example.com", "Lisbon", 5, None),
    (106, "Finn", "finn@example.com", "Aveiro", 13, None),
]

TABLES: dict[str, list[Row]] = {
    "orders_raw": _without(ORDERS, DROPPED_NO_CUSTOMER),  # 22 rows
    "products_changes": PRODUCTS_CHANGES,  # 11 rows
    "products": PRODUCTS,  # 4 rows
    "customers_history": CUSTOMERS_HISTORY,  # 11 rows, 5 current
    "orders_enriched": _without(ENRICHED_ALL, DROPPED_NO_CUSTOMER),  # 22 rows
    "valid_orders": _without(
        ENRICHED_ALL, DROPPED_NO_CUSTOMER | DROPPED_UNKNOWN_PRODUCT | DROPPED_NOT_A_SALE
    ),  # 17 rows
    "daily_sales": [
        (date(2026, 11, 1), 3, 6, D("62.00")),
        (date(2026, 11, 2), 5, 10, D("105.00")),
        (date(2026, 11, 3), 9, 16, D("212.00")),
    ],
    "sales_by_category": [
        ("beans", 10, 19, D("204.00")),
        ("equipment", 3, 3, D("90.00")),
        ("merch", 4, 10, D("85.00")),
    ],
}

ROW_COUNTS: dict[str, int] = {name: len(rows) for name, rows in TABLES.items()}

EXPECTATIONS: dict[str, dict[str, tuple[str, int, int]]] = {
    "orders_raw": {  # 24 input rows
        "positive_quantity": ("warn", 22, 2),  # orders 6 (0) and 18 (-1), kept
        "has_customer": ("drop", 22, 2),  # orders 3 and 14, quarantined
        "has_order_id": ("fail", 24, 0),  # never fires
    },
    "orders_enriched": {  # 22 input rows
        "known_product": ("warn", 19, 3),  # orders 5, 8, 17
        "priced": ("warn", 21, 1),  # order 11 (unit_price 0.00)
    },
    "valid_orders": {  # 22 input rows
        "known_product": ("drop", 19, 3),  # orders 5, 8, 17
        "is_sale": ("drop", 20, 2),  # orders 6, 18
    },
}

QUARANTINE: dict[str, dict[str, list[int]]] = {
    "orders_raw": {"has_customer": [3, 14]},
    "valid_orders": {"known_product": [5, 8, 17], "is_sale": [6, 18]},
}

TOP_CATEGORIES: list[Row] = [(1, "beans", D("204.00")), (2, "equipment", D("90.00"))]

PORTABLE: dict[str, list[Row]] = {
    "orders_raw": ORDERS,  # 24 rows: nothing dropped
    "products_changes": PRODUCTS_CHANGES,
    "products": PRODUCTS,  # the materialized-view stand-in for AUTO CDC SCD1
    "orders_enriched": ENRICHED_ALL,  # 24 rows
    "valid_orders": ENRICHED_ALL,  # 24 rows: no constraints
    "daily_sales": [
        (date(2026, 11, 1), 6, 8, D("99.00")),
        (date(2026, 11, 2), 6, 12, D("115.00")),
        (date(2026, 11, 3), 12, 17, D("214.00")),
    ],
    "sales_by_category": [
        (None, 3, 4, D("39.00")),  # the unknown products P4, P5, P9
        ("beans", 13, 19, D("205.00")),
        ("equipment", 3, 3, D("90.00")),
        ("merch", 5, 11, D("94.00")),
    ],
}

# The dataflow graph: dataset -> (kind, the datasets it reads, the file defining it).
DATASETS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "orders_raw": ("streaming_table", (), "orders_raw.py"),
    "products_changes": ("streaming_table", (), "products_changes.py"),
    "products": ("streaming_table", ("products_changes",), "products.sql"),  # flow products_cdc
    "customers_changes": ("temporary_view", (), "customers_history.py"),
    "customers_history": ("streaming_table", ("customers_changes",), "customers_history.py"),
    "orders_enriched": ("materialized_view", ("orders_raw", "products"), "orders_enriched.py"),
    "valid_orders": ("materialized_view", ("orders_enriched",), "valid_orders.sql"),
    "daily_sales": ("materialized_view", ("valid_orders",), "daily_sales.py"),
    "sales_by_category": ("materialized_view", ("valid_orders",), "sales_by_category.sql"),
}
# AUTO CDC flows: name -> (target, source, SCD type)
AUTO_CDC_FLOWS: dict[str, tuple[str, str, int]] = {
    "products_cdc": ("products", "products_changes", 1),
    "customers_history": ("customers_history", "customers_changes", 2),  # default name: the target
}
