"""Deterministic demo data: customers (CSV drops) and orders (JSON-lines drops).

The same seed and sizes always give byte-identical files, so re-landing the demo data is a
no-op and tests can assert exact counts.

Each customer's churn outcome is recorded on a different day (``updated_at``, the *label
time*, within the last 180 days before ``REFERENCE_DAY``). The outcome depends non-linearly on
the customer's history *up to that day* (recency x frequency, support tickets x tenure);
customers who did not churn keep ordering afterwards, churned ones stop. So features must be
looked up as of the label time: a join with the latest feature values leaks the outcome.

The drops also carry a few deliberately bad rows:
a ragged CSV row, a malformed JSON line, an amount that is not a number, a row without a
key, a negative amount (quarantined by a quality rule), and an order corrected by a later
record with the same ``order_id``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

REGIONS = ("north", "south", "east", "west")
PLANS = ("basic", "plus", "premium")
PRODUCTS = ("widget", "gadget", "gizmo", "doohickey", "sprocket", "flux-capacitor")
CUSTOMER_FIELDS = (
    "customer_id",
    "name",
    "email",
    "region",
    "plan",
    "signup_date",
    "support_tickets",
    "churned",
    "updated_at",
)
REFERENCE_DAY = date(2026, 6, 30)
LABEL_WINDOW_DAYS = 180


@dataclass(frozen=True)
class SampleSpec:
    """Sizes of the demo dataset."""

    customers: int = 1000
    customer_files: int = 2
    order_files: int = 3
    seed: int = 7


@dataclass(frozen=True)
class LandedFiles:
    """What :func:`land_sample_files` wrote (files already present are not rewritten)."""

    written: list[Path]
    unchanged: list[Path]
    customers: int
    orders: int
    bad_rows: int


def _churn_probability(recency_days: int, orders: int, tickets: int, tenure_days: int) -> float:
    score = -2.2
    if recency_days > 75 and orders <= 6:
        score += 3.4
    if tickets >= 4 and tenure_days < 365:
        score += 2.6
    if recency_days < 20:
        score -= 0.8
    score += 0.35 * math.sin(orders)  # a little non-monotone structure
    return 1.0 / (1.0 + math.exp(-score))


def build_sample_data(spec: SampleSpec) -> tuple[list[dict[str, str]], list[dict[str, object]]]:
    """Customers (all values as text, as a CSV export has them) and orders, deterministic."""
    rng = random.Random(spec.seed)
    customers: list[dict[str, str]] = []
    orders: list[dict[str, object]] = []
    order_seq = 0
    for i in range(1, spec.customers + 1):
        cid = f"C{i:05d}"
        label_day = REFERENCE_DAY - timedelta(days=rng.randint(0, LABEL_WINDOW_DAYS))
        tenure = rng.randint(30, 1500)  # days from signup to the label day
        signup = label_day - timedelta(days=tenure)
        region = rng.choice(REGIONS)
        plan = rng.choices(PLANS, weights=(5, 3, 2))[0]
        tickets = min(int(rng.expovariate(0.45)), 12)
        n_orders = max(1, min(int(rng.lognormvariate(1.7, 0.7)), 40))
        recency = min(int(rng.expovariate(1 / 45)), tenure)
        churned = rng.random() < _churn_probability(recency, n_orders, tickets, tenure)
        customers.append(
            {
                "customer_id": cid,
                "name": f"Customer {i}",
                "email": f"customer{i}@example.com",
                "region": region,
                "plan": plan,
                "signup_date": signup.isoformat(),
                "support_tickets": str(tickets),
                "churned": "1" if churned else "0",
                "updated_at": datetime(
                    label_day.year, label_day.month, label_day.day, 12
                ).isoformat(),
            }
        )
        last_day = label_day - timedelta(days=recency)
        span = max(tenure - recency, 1)
        days = [
            last_day if k == 0 else last_day - timedelta(days=rng.randint(0, span))
            for k in range(n_orders)
        ]
        if not churned:  # active customers keep ordering after the label day
            after = (REFERENCE_DAY - label_day).days
            n_after = int(after / 30 * rng.uniform(0.4, 1.6))
            days += [label_day + timedelta(days=rng.randint(1, after)) for _ in range(n_after)]
        for day in days:
            order_seq += 1
            ts = datetime(day.year, day.month, day.day, rng.randint(8, 21), rng.randint(0, 59))
            quantity = rng.randint(1, 5)
            unit = {"basic": 18.0, "plus": 30.0, "premium": 55.0}[plan] * rng.uniform(0.6, 1.6)
            orders.append(
                {
                    "order_id": f"O{order_seq:07d}",
                    "customer_id": cid,
                    "order_ts": ts.isoformat(),
                    "product": rng.choice(PRODUCTS),
                    "quantity": quantity,
                    "amount": round(unit * quantity, 2),
                    "status": "completed",
                    "updated_at": ts.isoformat(),
                }
            )
    return customers, orders


def _split(items: list[object], parts: int) -> list[list[object]]:
    size = math.ceil(len(items) / parts)
    return [items[i * size : (i + 1) * size] for i in range(parts)]


def _customers_csv(rows: list[dict[str, str]], bad: bool) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CUSTOMER_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    if bad:
        out.write("C99999,Ragged Row,only-three-fields\n")  # too few fields: corrupt
    return out.getvalue()


def _orders_jsonl(rows: list[dict[str, object]], bad: bool) -> str:
    lines = [json.dumps(r, separators=(",", ":")) for r in rows]
    if bad and rows:
        first = rows[0]
        lines.append('{"order_id":"O9999998","customer_id":"C00001","amount":')  # malformed
        lines.append(json.dumps({**first, "order_id": "O9999999", "amount": "n/a"}))  # bad type
        lines.append(json.dumps({**first, "order_id": None}))  # no key
        lines.append(json.dumps({**first, "order_id": "O9999997", "amount": -5.0}))  # rule: amount
        # a correction of the first order, later in sequence: dedupe keeps this one
        fixed_ts = datetime.fromisoformat(str(first["updated_at"])) + timedelta(days=1)
        lines.append(
            json.dumps({**first, "status": "refunded", "updated_at": fixed_ts.isoformat()})
        )
    return "\n".join(lines) + "\n"


def land_sample_files(landing_root: Path, spec: SampleSpec | None = None) -> LandedFiles:
    """Write the demo drops under ``landing_root/{customers,orders}``; identical files are kept."""
    spec = spec or SampleSpec()
    customers, orders = build_sample_data(spec)
    planned: list[tuple[Path, str]] = []
    for n, chunk in enumerate(_split(list(customers), spec.customer_files), start=1):
        text = _customers_csv(chunk, bad=n == spec.customer_files)  # type: ignore[arg-type]
        planned.append((landing_root / "customers" / f"customers_{n:03d}.csv", text))
    for n, chunk in enumerate(_split(list(orders), spec.order_files), start=1):
        text = _orders_jsonl(chunk, bad=n == spec.order_files)  # type: ignore[arg-type]
        planned.append((landing_root / "orders" / f"orders_{n:03d}.jsonl", text))
    written: list[Path] = []
    unchanged: list[Path] = []
    for path, text in planned:
        if path.exists() and path.read_text(encoding="utf-8") == text:
            unchanged.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # atomic: an ingest never sees a half-written drop
        written.append(path)
    return LandedFiles(written, unchanged, len(customers), len(orders), bad_rows=6)
