"""The expected results of ``tests/data/dab_project``, derived from its fixture files with
pandas alone (no Spark, no runner): the independent statement ``dab_expected.py`` pins.

``tests/e2e/test_dab_expected.py`` checks that this derivation and the hand-written values
in ``dab_expected.py`` agree, so neither can drift silently.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

PROJECT = Path(__file__).resolve().parents[1] / "data" / "dab_project"
FIXTURES = PROJECT / "fixtures"


def _feed(name: str, decimals: tuple[str, ...] = (), dates: tuple[str, ...] = ()) -> pd.DataFrame:
    """All JSON-lines files of one feed, in file order (as the notebook lands them)."""
    frames = [
        pd.read_json(f, lines=True, dtype=False) for f in sorted((FIXTURES / name).glob("*.json"))
    ]
    df = pd.concat(frames, ignore_index=True).astype(object)
    df = df.where(df.notna(), None)
    for c in decimals:
        df[c] = [None if v is None else Decimal(str(v)).quantize(Decimal("0.01")) for v in df[c]]
    for c in dates:
        df[c] = [None if v is None else dt.date.fromisoformat(str(v)[:10]) for v in df[c]]
    return df


def orders() -> pd.DataFrame:
    cols = ["order_id", "customer_id", "product_id", "quantity", "unit_price", "order_date"]
    return _feed("orders", decimals=("unit_price",), dates=("order_date",))[cols]


def products_changes() -> pd.DataFrame:
    cols = ["product_id", "name", "category", "price", "operation", "sequence_num"]
    df = _feed("products", decimals=("price",))
    for c in cols:
        if c not in df:
            df[c] = None
    return df[cols]


def customers_changes() -> pd.DataFrame:
    cols = ["customer_id", "name", "email", "city", "operation", "sequence_num"]
    return _feed("customers")[cols]


def scd1(changes: pd.DataFrame, key: str, seq: str, keep: list[str]) -> pd.DataFrame:
    """AUTO CDC SCD type 1: the newest change per key wins; a newest DELETE removes it."""
    newest = changes.sort_values(seq).groupby(key, as_index=False).tail(1)
    return newest[newest["operation"] != "DELETE"][keep]


def scd2(changes: pd.DataFrame, key: str, seq: str, keep: list[str]) -> pd.DataFrame:
    """AUTO CDC SCD type 2 (Databricks): changes applied in sequence order per key; an
    upsert closes the open version at its sequence and opens a new one; a DELETE closes
    the open version at the delete's sequence."""
    rows: list[dict[str, Any]] = []
    for _, group in changes.sort_values(seq).groupby(key, sort=True):
        current: dict[str, Any] | None = None
        for change in group.to_dict("records"):
            if current is not None:
                current["__END_AT"] = change[seq]
                rows.append(current)
                current = None
            if change["operation"] != "DELETE":
                current = {c: change[c] for c in keep} | {
                    "__START_AT": change[seq],
                    "__END_AT": None,
                }
        if current is not None:
            rows.append(current)
    return pd.DataFrame(rows, columns=[*keep, "__START_AT", "__END_AT"])


def enrich(orders_df: pd.DataFrame, products_df: pd.DataFrame) -> pd.DataFrame:
    names = products_df.rename(columns={"name": "product_name"})[
        ["product_id", "product_name", "category"]
    ]
    df = orders_df.merge(names, on="product_id", how="left").astype(object)
    df = df.where(df.notna(), None)
    df["revenue"] = [q * p for q, p in zip(df["quantity"], df["unit_price"], strict=True)]
    cols = ["order_id", "customer_id", "product_id", "product_name", "category", "quantity",
            "unit_price", "order_date", "revenue"]  # fmt: skip
    return df[cols]


def group_sales(valid: pd.DataFrame, by: str) -> pd.DataFrame:
    out = []
    for value, g in valid.groupby(by, dropna=False, sort=True):
        value = None if pd.isna(value) else value
        out.append((value, len(g), int(sum(g["quantity"])), sum(g["revenue"], Decimal(0))))
    return pd.DataFrame(out, columns=[by, "orders", "units", "revenue"])


def rows(df: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [
        tuple(None if _missing(v) else _plain(v) for v in r) for r in df.itertuples(index=False)
    ]


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _plain(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():  # an int column with NULLs reads as float
        return int(v)
    return v.item() if hasattr(v, "item") and not isinstance(v, Decimal) else v


def fails(df: pd.DataFrame, condition: Any) -> pd.Series:
    """Rows where a SQL condition is not true (false or NULL both fail the expectation)."""
    return ~condition(df).fillna(False).astype(bool)


def derive_full() -> dict[str, Any]:
    """Databricks semantics: expectations, quarantine, AUTO CDC SCD1 and SCD2."""
    o = orders()
    exp: dict[str, dict[str, tuple[str, int, int]]] = {}
    checks = {
        "orders_raw": [
            ("positive_quantity", "warn", lambda d: d["quantity"].map(lambda q: q is not None and q > 0)),
            ("has_customer", "drop", lambda d: d["customer_id"].notna()),
            ("has_order_id", "fail", lambda d: d["order_id"].notna()),
        ]
    }  # fmt: skip
    exp["orders_raw"], dropped_raw = _apply(o, checks["orders_raw"])
    raw = o[~dropped_raw.any(axis=1)]
    products = scd1(
        products_changes(),
        "product_id",
        "sequence_num",
        ["product_id", "name", "category", "price"],
    )
    enriched = enrich(raw, products)
    exp["orders_enriched"], _ = _apply(enriched, [
        ("known_product", "warn", lambda d: d["product_name"].notna()),
        ("priced", "warn", lambda d: d["unit_price"].map(lambda p: p is not None and p > 0)),
    ])  # fmt: skip
    exp["valid_orders"], dropped_valid = _apply(enriched, [
        ("known_product", "drop", lambda d: d["product_name"].notna()),
        ("is_sale", "drop", lambda d: d["quantity"].map(lambda q: q is not None and q > 0)),
    ])  # fmt: skip
    valid = enriched[~dropped_valid.any(axis=1)]
    history = scd2(
        customers_changes(), "customer_id", "sequence_num", ["customer_id", "name", "email", "city"]
    )
    by_category = group_sales(valid, "category")
    top = by_category.sort_values("revenue", ascending=False).head(2)
    tables = {
        "orders_raw": o[~dropped_raw.any(axis=1)],
        "products_changes": products_changes(),
        "products": products,
        "customers_history": history,
        "orders_enriched": enriched,
        "valid_orders": valid,
        "daily_sales": group_sales(valid, "order_date"),
        "sales_by_category": by_category,
    }
    quarantine = {
        "orders_raw": {
            "has_customer": sorted(int(i) for i in o[dropped_raw["has_customer"]]["order_id"])
        },
        "valid_orders": {
            name: sorted(int(i) for i in enriched[dropped_valid[name]]["order_id"])
            for name in ("known_product", "is_sale")
        },
    }
    return {
        "tables": {name: sorted_rows(rows(df)) for name, df in tables.items()},
        "expectations": exp,
        "quarantine": quarantine,
        "top_categories": [(i + 1, r[0], r[3]) for i, r in enumerate(rows(top))],
    }


def _apply(
    df: pd.DataFrame, checks: list[Any]
) -> tuple[dict[str, tuple[str, int, int]], pd.DataFrame]:
    """Each expectation evaluated on every input row: {name: (action, passed, failed)} and
    the drop-expectations' failing rows."""
    counts, dropped = {}, pd.DataFrame(index=df.index)
    for name, action, cond in checks:
        failed = fails(df, cond)
        counts[name] = (action, int((~failed).sum()), int(failed.sum()))
        if action == "drop":
            dropped[name] = failed
    return counts, dropped


def derive_portable() -> dict[str, list[tuple[Any, ...]]]:
    """The portable variant: no expectations (nothing dropped), products as the latest
    non-deleted change (the SCD1 stand-in), no customers_history."""
    o = orders()
    products = scd1(
        products_changes(),
        "product_id",
        "sequence_num",
        ["product_id", "name", "category", "price"],
    )
    enriched = enrich(o, products)
    tables = {
        "orders_raw": o,
        "products_changes": products_changes(),
        "products": products,
        "orders_enriched": enriched,
        "valid_orders": enriched,
        "daily_sales": group_sales(enriched, "order_date"),
        "sales_by_category": group_sales(enriched, "category"),
    }
    return {name: sorted_rows(rows(df)) for name, df in tables.items()}


def sorted_rows(values: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    def key(v: Any) -> tuple[int, Any]:
        if v is None:
            return (0, "")
        if isinstance(v, int | Decimal):
            return (1, Decimal(v))
        return (2, str(v))

    return sorted(values, key=lambda r: [key(v) for v in r])


if __name__ == "__main__":
    import pprint

    pprint.pprint(derive_full(), width=110)
    pprint.pprint(derive_portable(), width=110)
