"""The demo data generator is deterministic and carries the documented bad rows."""

from __future__ import annotations

from pathlib import Path

from lakehouse.samples.generator import SampleSpec, build_sample_data, land_sample_files


def test_same_seed_same_data_and_different_seed_differs() -> None:
    spec = SampleSpec(customers=50)
    assert build_sample_data(spec) == build_sample_data(spec)
    assert build_sample_data(spec) != build_sample_data(SampleSpec(customers=50, seed=8))


def test_land_writes_once_and_keeps_identical_files(tmp_path: Path) -> None:
    first = land_sample_files(tmp_path, SampleSpec(customers=40))
    assert [p.name for p in first.written] == [
        "customers_001.csv",
        "customers_002.csv",
        "orders_001.jsonl",
        "orders_002.jsonl",
        "orders_003.jsonl",
    ]
    mtimes = {p: p.stat().st_mtime_ns for p in first.written}
    second = land_sample_files(tmp_path, SampleSpec(customers=40))
    assert second.written == []
    assert {p: p.stat().st_mtime_ns for p in second.unchanged} == mtimes
    assert not list(tmp_path.rglob("*.tmp"))


def test_bad_rows_are_in_the_last_file_of_each_kind(tmp_path: Path) -> None:
    landed = land_sample_files(tmp_path, SampleSpec(customers=40))
    customers_last = (tmp_path / "customers" / "customers_002.csv").read_text().splitlines()
    assert customers_last[-1] == "C99999,Ragged Row,only-three-fields"
    orders_last = (tmp_path / "orders" / "orders_003.jsonl").read_text().splitlines()
    assert orders_last[-5] == '{"order_id":"O9999998","customer_id":"C00001","amount":'
    assert '"amount": "n/a"' in orders_last[-4]
    assert '"order_id": null' in orders_last[-3]
    assert '"order_id": "O9999997"' in orders_last[-2] and '"amount": -5.0' in orders_last[-2]
    assert '"status": "refunded"' in orders_last[-1]
    lines = sum(len(p.read_text().splitlines()) for p in (tmp_path / "orders").glob("*.jsonl"))
    assert lines == landed.orders + 5
