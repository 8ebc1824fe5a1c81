"""The micro-batcher with real scikit-learn pipelines and real threads (no HTTP here)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lakehouse.apps.serving.batching import (
    BatchResultError,
    MicroBatcher,
    batching_options,
)
from lakehouse.apps.serving.schemas import InputColumn, input_frame
from lakehouse.core.errors import LakehouseError

COLUMNS = (
    InputColumn("tenure", "number", True),
    InputColumn("spend", "number", True),
    InputColumn("plan", "string", True),
)
PLANS = ["basic", "plus", "pro"]


def _records(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "tenure": float(rng.integers(0, 60)),
            "spend": float(np.round(rng.gamma(2.0, 40.0), 2)),
            "plan": PLANS[int(rng.integers(0, 3))],
        }
        for _ in range(n)
    ]


def _pipeline(estimator: Any) -> Pipeline:
    """A fitted pipeline shaped like the served churn models (scaler + one-hot + model)."""
    train = input_frame(_records(400, seed=1), COLUMNS)
    label = ((train["tenure"] < 12) & (train["plan"] != "pro")) | (train["spend"] > 150)
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["tenure", "spend"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    return Pipeline([("pre", pre), ("model", estimator)]).fit(train, label.astype(int))


@pytest.fixture(scope="module")
def pipelines() -> dict[str, Pipeline]:
    return {
        "logistic_regression": _pipeline(LogisticRegression()),
        "gradient_boosting": _pipeline(GradientBoostingClassifier(n_estimators=30, max_depth=2)),
    }


@pytest.fixture
def batcher() -> Iterator[MicroBatcher]:
    b = MicroBatcher(max_batch=64, max_wait_ms=2)
    yield b
    b.close()


def _proba(pipeline: Pipeline) -> Callable[[list[dict[str, Any]]], np.ndarray]:
    def run(rows: list[dict[str, Any]]) -> np.ndarray:
        return np.asarray(pipeline.predict_proba(input_frame(rows, COLUMNS)))

    return run


class Gate:
    """A batch function wrapper that holds the first batch until released (calls queue up)
    and records the rows of every batch it ran."""

    def __init__(self, function: Callable[[list[Any]], Any]) -> None:
        self.function = function
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[list[Any]] = []

    def __call__(self, rows: list[Any]) -> Any:
        self.batches.append(list(rows))
        self.entered.set()
        assert self.release.wait(30)
        return self.function(rows)


def _wait_queued(batcher: MicroBatcher, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(batcher._queue) < n:  # the calls submitted from other threads are queued
        assert time.monotonic() < deadline, f"{len(batcher._queue)} of {n} calls queued"
        time.sleep(0.001)


@pytest.mark.parametrize("estimator", ["logistic_regression", "gradient_boosting"])
def test_concurrent_calls_get_exactly_their_unbatched_results(
    pipelines: dict[str, Pipeline], batcher: MicroBatcher, estimator: str
) -> None:
    pipeline = pipelines[estimator]
    run = _proba(pipeline)
    # single records and small batches, as concurrent requests send them
    requests = [_records(1 + i % 3, seed=100 + i) for i in range(300)]
    expected = [pipeline.predict_proba(input_frame(rows, COLUMNS)) for rows in requests]
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda rows: batcher.call(("v1", "proba"), run, rows), requests))
    for rows, want, have in zip(requests, expected, got, strict=True):
        assert have.shape == want.shape
        if estimator == "gradient_boosting":
            assert np.array_equal(have, want)  # trees: bit for bit
        else:
            # a linear model's matrix product (BLAS) may round the last bit of a row
            # differently in a batch than alone; never more than a few units in the last place
            np.testing.assert_array_max_ulp(have, want, maxulp=4)
        classes = np.asarray(pipeline.classes_)[np.argmax(have, axis=1)]
        assert np.array_equal(classes, pipeline.predict(input_frame(rows, COLUMNS)))
    stats = batcher.stats
    assert stats.calls == len(requests)
    assert stats.records == sum(len(r) for r in requests)
    assert stats.batches < stats.calls  # concurrent calls did share model calls


def test_calls_queued_while_the_model_is_busy_form_the_next_batch(
    pipelines: dict[str, Pipeline], batcher: MicroBatcher
) -> None:
    pipeline = pipelines["gradient_boosting"]
    gate = Gate(_proba(pipeline))
    requests = [_records(1, seed=200 + i) for i in range(10)]
    with ThreadPoolExecutor(10) as pool:
        first = pool.submit(batcher.call, "k", gate, requests[0])
        assert gate.entered.wait(10)  # the first call runs alone: nothing else was queued
        rest = [pool.submit(batcher.call, "k", gate, rows) for rows in requests[1:]]
        _wait_queued(batcher, 9)
        gate.release.set()
        results = [first.result(30), *(f.result(30) for f in rest)]
    assert [len(b) for b in gate.batches] == [1, 9]
    for rows, result in zip(requests, results, strict=True):
        assert np.array_equal(result, pipeline.predict_proba(input_frame(rows, COLUMNS)))


def test_a_lone_request_never_waits_and_the_wait_is_bounded() -> None:
    batcher = MicroBatcher(max_batch=64, max_wait_ms=300)
    try:
        started = time.monotonic()
        for i in range(20):  # one client: each call runs at once, no 300 ms wait
            assert batcher.call("k", lambda rows: rows, [i]) == [i]
        assert time.monotonic() - started < 2.0
        assert batcher.stats.batches == 20

        # after concurrent traffic (batches of 5), a lone call waits for company, but at
        # most max_wait, then runs alone
        gate = Gate(lambda rows: rows)
        with ThreadPoolExecutor(6) as pool:
            first = pool.submit(batcher.call, "k", gate, ["a"])
            assert gate.entered.wait(10)
            rest = [pool.submit(batcher.call, "k", gate, [n]) for n in range(5)]
            _wait_queued(batcher, 5)
            gate.release.set()
            assert first.result(10) == ["a"]
            assert [f.result(10) for f in rest] == [[n] for n in range(5)]
        started = time.monotonic()
        assert batcher.call("k", lambda rows: rows, ["late"]) == ["late"]
        waited = time.monotonic() - started
        assert 0.25 < waited < 2.0
    finally:
        batcher.close()


def test_the_adaptive_wait_gathers_requests_that_arrive_shortly_after_each_other() -> None:
    batcher = MicroBatcher(max_batch=64, max_wait_ms=1000)
    try:
        gate = Gate(lambda rows: rows)
        with ThreadPoolExecutor(8) as pool:
            # teach it that 4 requests come together
            first = pool.submit(batcher.call, "k", gate, [0])
            assert gate.entered.wait(10)
            rest = [pool.submit(batcher.call, "k", gate, [n]) for n in range(1, 5)]
            _wait_queued(batcher, 4)
            gate.release.set()
            assert [f.result(10) for f in [first, *rest]] == [[n] for n in range(5)]
            # then 4 requests 50 ms apart: one batch, which runs as soon as the 4th arrives
            gate.batches.clear()
            started = time.monotonic()
            spaced = []
            for n in range(4):
                spaced.append(pool.submit(batcher.call, "k", gate, [n]))
                time.sleep(0.05)
            assert [f.result(10) for f in spaced] == [[n] for n in range(4)]
        assert [len(b) for b in gate.batches] == [4]
        assert time.monotonic() - started < 0.9  # not the whole second
    finally:
        batcher.close()


def test_different_keys_never_share_a_batch(
    pipelines: dict[str, Pipeline], batcher: MicroBatcher
) -> None:
    champion, challenger = pipelines["logistic_regression"], pipelines["gradient_boosting"]
    gates = {"champion": Gate(_proba(champion)), "challenger": Gate(_proba(challenger))}
    models = {"champion": champion, "challenger": challenger}
    hold = Gate(lambda rows: rows)  # keeps the worker busy while both kinds queue up
    # each record names its alias (input_frame ignores fields that are not input columns)
    requests = [
        (alias, [{**r, "alias": alias} for r in _records(1, seed=300 + i)])
        for i, alias in enumerate(["champion" if i % 3 else "challenger" for i in range(30)])
    ]
    for gate in gates.values():
        gate.release.set()
    with ThreadPoolExecutor(31) as pool:
        busy = pool.submit(batcher.call, "hold", hold, ["x"])
        assert hold.entered.wait(10)
        futures = [pool.submit(batcher.call, alias, gates[alias], rows) for alias, rows in requests]
        _wait_queued(batcher, len(requests))
        hold.release.set()
        assert busy.result(10) == ["x"]
        results = [f.result(30) for f in futures]
    for (alias, rows), result in zip(requests, results, strict=True):
        want = models[alias].predict_proba(input_frame(rows, COLUMNS))
        np.testing.assert_array_max_ulp(result, want, maxulp=4)  # the champion is linear
    for alias, gate in gates.items():
        assert len(gate.batches) == 1  # each alias's queued calls: one batch of its own
        assert {r["alias"] for r in gate.batches[0]} == {alias}


def test_batches_hold_at_most_max_batch_records_and_big_calls_run_alone() -> None:
    batcher = MicroBatcher(max_batch=8, max_wait_ms=0)
    try:
        gate = Gate(lambda rows: rows)
        calls = [[f"{i}-{j}" for j in range(3)] for i in range(6)] + [
            [f"big-{j}" for j in range(20)]
        ]
        with ThreadPoolExecutor(8) as pool:
            first = pool.submit(batcher.call, "k", gate, ["first"])
            assert gate.entered.wait(10)
            futures = [pool.submit(batcher.call, "k", gate, rows) for rows in calls]
            _wait_queued(batcher, len(calls))
            gate.release.set()
            assert first.result(10) == ["first"]
            assert [f.result(10) for f in futures] == calls  # each call gets its own rows back
        sizes = [len(b) for b in gate.batches]
        assert sizes[0] == 1 and sorted(sizes[1:]) == [6, 6, 6, 20]
        assert ["big-0" in b for b in gate.batches].count(True) == 1
        assert next(b for b in gate.batches if "big-0" in b) == calls[-1]  # alone, not split
    finally:
        batcher.close()


def test_a_failing_call_fails_alone_and_nothing_hangs(
    pipelines: dict[str, Pipeline], batcher: MicroBatcher
) -> None:
    pipeline = pipelines["gradient_boosting"]

    def refuse_poison(rows: list[dict[str, Any]]) -> np.ndarray:
        if any(r["plan"] == "poison" for r in rows):
            raise ValueError("poison plan")
        return np.asarray(pipeline.predict_proba(input_frame(rows, COLUMNS)))

    gate = Gate(refuse_poison)
    requests = [_records(1, seed=400 + i) for i in range(12)]
    for i in (3, 7):
        requests[i][0]["plan"] = "poison"
    with ThreadPoolExecutor(13) as pool:
        first = pool.submit(batcher.call, "k", gate, _records(1, seed=399))
        assert gate.entered.wait(10)
        futures = [pool.submit(batcher.call, "k", gate, rows) for rows in requests]
        _wait_queued(batcher, len(requests))
        gate.release.set()
        first.result(10)
        for i, (rows, future) in enumerate(zip(requests, futures, strict=True)):
            if i in (3, 7):
                with pytest.raises(ValueError, match="poison plan"):
                    future.result(10)
            else:
                want = pipeline.predict_proba(input_frame(rows, COLUMNS))
                assert np.array_equal(future.result(10), want)
    assert batcher.stats.split == 1  # the shared batch failed once and was re-run call by call

    # a model that always fails: every caller gets the error, the batcher keeps serving
    def broken(rows: list[Any]) -> Any:
        raise RuntimeError("model broken")

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(batcher.call, "broken", broken, [i]) for i in range(8)]
        for future in futures:
            with pytest.raises(RuntimeError, match="model broken"):
                future.result(10)
    with pytest.raises(BatchResultError, match="gave 1 results for 2 records"):
        batcher.call("short", lambda rows: rows[:1], [1, 2])
    assert batcher.call("k", lambda rows: rows, ["still serving"]) == ["still serving"]


def test_a_cancelled_call_is_skipped_and_close_drains_the_queue() -> None:
    batcher = MicroBatcher(max_batch=64, max_wait_ms=0)
    gate = Gate(lambda rows: rows)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(batcher.call, "k", gate, ["first"])
        assert gate.entered.wait(10)
        cancelled = batcher.submit("k", gate, ["cancelled"])
        kept = batcher.submit("k", gate, ["kept"])
        assert cancelled.cancel()
        closing = pool.submit(batcher.close)
        gate.release.set()
        closing.result(10)
        assert first.result(10) == ["first"] and kept.result(10) == ["kept"]
    with pytest.raises(CancelledError):
        cancelled.result(0)
    assert ["cancelled"] not in gate.batches
    assert batcher._thread is None  # stopped; the next call starts a worker again
    assert batcher.call("k", lambda rows: rows, ["again"]) == ["again"]
    batcher.close()


@pytest.mark.parametrize(
    ("max_batch", "wait_ms", "message"),
    [
        (-1, 2, "max batch -1: give a whole number of records"),
        (2.5, 2, "max batch 2.5"),
        (8, -1, "batch wait -1 ms: give 0 to 1000 milliseconds"),
        (8, 5000, "batch wait 5000 ms"),
    ],
)
def test_batching_options_are_checked_in_one_line(
    max_batch: Any, wait_ms: Any, message: str
) -> None:
    with pytest.raises(LakehouseError, match=message):
        batching_options(max_batch, wait_ms)
    assert batching_options(0, 0) == (0, 0.0)  # 0: no batching
    with pytest.raises(LakehouseError, match="turns batching off"):
        MicroBatcher(0)


def test_input_frame_of_a_batch_is_the_rows_of_its_parts() -> None:
    rows = _records(5, seed=7)
    whole = input_frame(rows, COLUMNS)
    parts = pd.concat([input_frame(rows[:2], COLUMNS), input_frame(rows[2:], COLUMNS)])
    pd.testing.assert_frame_equal(whole, parts.reset_index(drop=True))
