"""Adaptive micro-batching: concurrent model calls for one model version run as one call.

A single-record ``predict_proba`` through a scikit-learn pipeline is mostly fixed overhead
(input checks, the column transformer, one step after the other), so a batch of 8 or 64
records costs little more than one record. :class:`MicroBatcher` runs a server's model calls
on one worker thread and gathers the calls that queue up meanwhile into one:

- **Batch while busy**: when the worker is free it takes every queued call with the same key
  (up to ``max_batch`` records); the calls that arrive while that batch runs form the next
  one. A lone request never waits: with one request in flight its call runs at once.
- **Adaptive wait**: only when the last batches were bigger than what is queued now (several
  clients are sending) does the worker wait, at most ``max_wait_s``, for as many records as
  the largest of the last :data:`RECENT_BATCHES` batches, and then run what it has. With one
  client that size is 1: no wait.
- **One key per batch**: a call is batched only with calls of the same key (the server uses
  the model version, the loaded object and the method), so the requests of an A/B challenger
  never share a batch with the champion's; calls of other keys keep their place in the queue.
- **Per-call results**: the rows of the calls are concatenated in arrival order, the model is
  called once, and its output (an array or sequence with one entry per row) is sliced back
  per call. A request larger than ``max_batch`` runs alone, never split.
- **Failures stay local**: when a batch of several calls fails, each of its calls is run
  again alone, so only a call that fails by itself gets the error (raised to its caller);
  other batches are not affected. Every future is resolved: nothing hangs, also when the
  batcher stops (the worker drains the queue before it exits).

Callers in threads use :meth:`MicroBatcher.call` (blocking); async callers await
``asyncio.wrap_future(batcher.submit(...))``. The worker thread starts with the first call and
stops with :meth:`MicroBatcher.close` (a later call starts it again).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from lakehouse.core.errors import LakehouseError

DEFAULT_MAX_BATCH = 64
DEFAULT_MAX_WAIT_MS = 2.0
RECENT_BATCHES = 8  # the adaptive wait aims at the largest of the last this many batches
MAX_WAIT_MS_LIMIT = 1000.0

Rows = Sequence[Any]
BatchFunction = Callable[[list[Any]], Any]  # rows -> one result per row (sliceable)


class BatchResultError(LakehouseError):
    """A batch function returned a different number of results than it was given rows."""


@dataclass(eq=False)
class _Call:
    key: Hashable
    function: BatchFunction
    rows: list[Any]
    future: Future[Any]


@dataclass
class BatchStats:
    """What the batcher did so far (read without a lock: figures for ``/health``)."""

    batches: int = 0
    calls: int = 0
    records: int = 0
    largest: int = 0  # records in the largest batch
    split: int = 0  # batches of several calls that failed and were re-run call by call

    def as_dict(self) -> dict[str, float]:
        return {
            "batches": self.batches,
            "calls": self.calls,
            "records": self.records,
            "largest_batch": self.largest,
            "mean_batch": round(self.records / self.batches, 2) if self.batches else 0.0,
            "split_after_error": self.split,
        }


def batching_options(max_batch: int, max_wait_ms: float) -> tuple[int, float]:
    """``(max_batch, max_wait_ms)`` when valid (``max_batch`` 0 turns batching off), else a
    one-line :class:`LakehouseError` naming the option."""
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 0:
        raise LakehouseError(
            f"max batch {max_batch!r}: give a whole number of records (0 turns batching off)"
        )
    if (
        isinstance(max_wait_ms, bool)
        or not isinstance(max_wait_ms, int | float)
        or not 0 <= max_wait_ms <= MAX_WAIT_MS_LIMIT
    ):
        shown = f"{max_wait_ms:g}" if isinstance(max_wait_ms, int | float) else repr(max_wait_ms)
        raise LakehouseError(f"batch wait {shown} ms: give 0 to {MAX_WAIT_MS_LIMIT:g} milliseconds")
    return max_batch, float(max_wait_ms)


class MicroBatcher:
    """Runs model calls on one worker thread, gathering concurrent calls per key (see module)."""

    def __init__(
        self,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
        *,
        name: str = "model-batcher",
    ) -> None:
        max_batch, max_wait_ms = batching_options(max_batch, max_wait_ms)
        if max_batch < 1:
            raise LakehouseError("max batch 0 turns batching off: create no batcher")
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000
        self.name = name
        self.stats = BatchStats()
        self._queue: deque[_Call] = deque()
        self._cond = threading.Condition()
        self._recent: deque[int] = deque(maxlen=RECENT_BATCHES)
        self._thread: threading.Thread | None = None
        self._stopping = False

    # ------------------------------------------------------------------ callers

    def submit(self, key: Hashable, function: BatchFunction, rows: Rows) -> Future[Any]:
        """Queue ``function(rows)``; the future gets this call's slice of the batch's output.

        Calls with an equal ``key`` may be batched together and must accept each other's rows:
        the batch runs the ``function`` of its first call on all rows.
        """
        future: Future[Any] = Future()
        call = _Call(key, function, list(rows), future)
        with self._cond:
            self._queue.append(call)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return future

    def call(self, key: Hashable, function: BatchFunction, rows: Rows) -> Any:
        """:meth:`submit` and wait for the result (or the call's exception)."""
        return self.submit(key, function, rows).result()

    def close(self, timeout: float = 10.0) -> None:
        """Run what is queued, then stop the worker thread (waits up to ``timeout`` s)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._cond:
            self._stopping = False

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:  # stopping with nothing left: a later call starts anew
                    self._thread = None
                    return
                batch = self._gather()
            # a caller that gave up (a cancelled future) is left out
            batch = [c for c in batch if c.future.set_running_or_notify_cancel()]
            if batch:
                self._execute(batch)

    def _gather(self) -> list[_Call]:
        """The next batch: the first queued call and the queued calls of its key that fit,
        after the adaptive wait (the caller holds the lock; waiting releases it)."""
        first = self._queue.popleft()
        batch = [first]
        size = self._take(first.key, batch, len(first.rows))
        target = min(self.max_batch, max(self._recent, default=1))
        if self.max_wait_s > 0 and size < target:
            deadline = time.monotonic() + self.max_wait_s
            while size < target and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
                size = self._take(first.key, batch, size)
        self._recent.append(size)
        return batch

    def _take(self, key: Hashable, batch: list[_Call], size: int) -> int:
        """Move the queued calls of ``key`` that fit into ``batch``; the batch's new size."""
        if size >= self.max_batch or not self._queue:
            return size
        kept: deque[_Call] = deque()
        for call in self._queue:
            if call.key == key and size + len(call.rows) <= self.max_batch:
                batch.append(call)
                size += len(call.rows)
            else:
                kept.append(call)
        self._queue = kept
        return size

    def _execute(self, batch: list[_Call]) -> None:
        """Run one batch and resolve its futures; a failed batch of several calls is re-run
        call by call so that only failing calls get an error."""
        try:
            rows = batch[0].rows if len(batch) == 1 else [r for c in batch for r in c.rows]
            output = batch[0].function(rows)
            if len(output) != len(rows):
                raise BatchResultError(
                    f"the model gave {len(output)} results for {len(rows)} records"
                )
        except BaseException as exc:  # resolve every future, whatever happened
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            self.stats.split += 1
            for call in batch:
                self._execute([call])
            return
        start = 0
        for call in batch:
            end = start + len(call.rows)
            call.future.set_result(output[start:end])
            start = end
        stats = self.stats
        stats.batches += 1
        stats.calls += len(batch)
        stats.records += len(rows)
        stats.largest = max(stats.largest, len(rows))
