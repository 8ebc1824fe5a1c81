"""A small governed project whose ``shop.sales.orders`` has row filters per group (test data).

Who sees which rows (ids) of ``orders``:

* bob (eu-analysts): ``region = 'EU'`` -> 1, 3
* carol (us-analysts, and named herself): US or ``amount >= 100`` -> 2, 3, 4, 5
* dave (analysts, named by no rule): the rule for everyone else, on the masked ``email``'s
  raw value -> 1, 2, 4, 6
* alice (data-engineers, the owner): ``true`` -> all; owners are not exempt otherwise
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

BUNDLE = """\
bundle:
  name: rowfilters
include:
  - conf/*.yml
variables:
  data_root:
    default: ./data
targets:
  local:
    default: true
"""
CATALOG = """\
catalog:
  name: shop
  storage_root: ${var.data_root}/tables
  owner: data-engineers
  principals:
    users: [alice, bob, carol, dave, erin]
    groups:
      data-engineers: [alice]
      eu-analysts: [bob]
      us-analysts: [carol]
      analysts: [eu-analysts, us-analysts, dave]
  grants:
    - {principal: analysts, privileges: [USE CATALOG]}
  schemas:
    sales:
      grants:
        - {principal: analysts, privileges: [USE SCHEMA, SELECT]}
      tables:
        orders:
          layer: gold
          columns:
            - {name: id, type: int}
            - {name: region, type: string}
            - {name: email, type: string, tags: [pii], mask: redact}
            - {name: amount, type: double}
          row_filters:
            - {to: [eu-analysts], predicate: "region = 'EU'"}
            - {to: [us-analysts], predicate: "region = 'US'"}
            - {to: [carol], predicate: "amount >= 100"}
            - {to: [data-engineers], predicate: "true"}
            - {predicate: "email LIKE '%@example.com'"}
"""
ORDERS = "shop.sales.orders"
ROWS = [
    (1, "EU", "ann@example.com", 10.0),
    (2, "US", "bo@example.com", 250.0),
    (3, "EU", "cy@corp.com", 120.0),
    (4, "APAC", "di@example.com", 300.0),
    (5, "US", "ed@corp.com", 50.0),
    (6, None, "fay@example.com", 5.0),
]
SEES = {"alice": [1, 2, 3, 4, 5, 6], "bob": [1, 3], "carol": [2, 3, 4, 5], "dave": [1, 2, 4, 6]}
FILTERS = {
    "alice": "true",
    "bob": "region = 'EU'",
    "carol": "(region = 'US') OR (amount >= 100)",
    "dave": "email LIKE '%@example.com'",
}


def expected(principal: str) -> list[tuple[int, str | None, str, float]]:
    """The rows ``principal`` sees (email masked for all but the owner), by id."""
    return [
        (i, region, email if principal == "alice" else "***", amount)
        for i, region, email, amount in ROWS
        if i in SEES[principal]
    ]


def make_project(root: Path) -> Path:
    """Write the bundle, its catalog and the orders Delta table under ``root``."""
    (root / "conf").mkdir(parents=True)
    (root / "bundle.yml").write_text(BUNDLE)
    (root / "conf" / "catalog.yml").write_text(CATALOG)
    schema = pa.schema(
        [
            ("id", pa.int32()),
            ("region", pa.string()),
            ("email", pa.string()),
            ("amount", pa.float64()),
        ]
    )
    data = pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in ROWS], schema)
    write_deltalake(str(root / "data" / "tables" / "sales" / "orders"), data)
    return root
