"""`BatchWriter`: the single writer between the runtime and a store, with group commit.

The runtime enqueues records (sync, O(1), on the event loop thread); one `run()` loop commits them. While a
commit is in flight, new records accumulate and go in the next single transaction, so a flood of 10,000
tasks costs a handful of commits. A record enqueued again before its batch commits is written once, in its
latest state. Each enqueue returns the sequence number of the batch that will carry it;
`wait_committed(seq)` returns once that batch and every earlier one is durable.

A failing write is retried with exponential backoff, never dropped: the batch goes back to the front of the
queue and merges with what arrived meanwhile. On cancellation, `run()` flushes what is queued inside a
shielded, time-bounded scope.
"""

from __future__ import annotations

import enum
import math
import time
from collections import deque
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskStatus as AnyioTaskStatus
from anyio.lowlevel import checkpoint

from .._codec import UnstoredCallArgs
from .._models import TaskRecord
from ._common import copy_record
from ._protocol import TaskStore

__all__ = ["BatchWriter", "WriterStatistics", "backoff_delay"]


def backoff_delay(attempt: int, *, base: float, cap: float) -> float:
    """Seconds to wait before retry number `attempt` (1-based): `min(cap, base * 2 ** (attempt - 1))`."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    return min(cap, base * 2.0 ** min(attempt - 1, 64))  # the exponent cap keeps the float finite


@dataclass(frozen=True, slots=True)
class WriterStatistics:
    """A snapshot of a `BatchWriter`.

    `queued`: records not yet committed (in flight included); `batches`: committed transactions;
    `records_written`: records those carried; `failures`: failed write attempts; `last_error`: the most
    recent failure (kept after recovery, for diagnosis); `retrying`: the writer is backing off right now;
    `write_seconds`: the time the committed transactions took, in total (divide by `batches` for the mean).
    """

    queued: int
    batches: int
    records_written: int
    failures: int
    last_error: str | None
    retrying: bool
    write_seconds: float = 0.0


@dataclass(slots=True)
class _Batch:
    seq: int
    records: dict[str, tuple[TaskRecord, bool]] = field(default_factory=dict)  # task_id -> (record, requeue)


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class BatchWriter:
    """Writes task records to `store` as `owner`, in group-committed batches of at most `max_batch`.

    `retry_delay` and `max_retry_delay` shape the backoff of failed writes (see `backoff_delay()` for the
    formula); `shutdown_timeout` bounds the final flush when `run()` is cancelled.
    """

    def __init__(
        self,
        store: TaskStore,
        *,
        owner: str,
        max_batch: int = 1000,
        retry_delay: float = 0.05,
        max_retry_delay: float = 5.0,
        shutdown_timeout: float = 5.0,
    ) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be an int >= 1, got {max_batch!r}")
        for name, value in (
            ("retry_delay", retry_delay),
            ("max_retry_delay", max_retry_delay),
            ("shutdown_timeout", shutdown_timeout),
        ):
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
        if not owner or not isinstance(owner, str):
            raise ValueError("owner must be a non-empty str (the instance id)")
        self.store = store
        self.owner = owner
        self._max_batch = max_batch
        self._retry_delay = float(retry_delay)
        self._max_retry_delay = float(max_retry_delay)
        self._shutdown_timeout = float(shutdown_timeout)
        self._queue: deque[_Batch] = deque()
        self._where: dict[str, _Batch] = {}  # task_id -> the queued (not in flight) batch holding it
        self._next_seq = 1
        self._committed = 0
        self._in_flight = 0
        self._state = _State.NEW
        self._wake: anyio.Event | None = None
        self._committed_event: anyio.Event | None = None
        self._lock: anyio.Lock | None = None  # made on first use: anyio primitives bind to one event loop
        self._batches = self._records_written = self._failures = 0
        self._write_seconds = 0.0
        self._last_error: str | None = None
        self._retrying = False

    def __repr__(self) -> str:
        return f"BatchWriter(owner={self.owner!r}, state={self._state.value}, queued={self._queued()})"

    # ---- the runtime's side ----------------------------------------------------------------------------

    def enqueue(self, record: TaskRecord, *, requeue: bool = False) -> int:
        """Queue `record` for writing; returns the sequence number of the batch that will carry it.

        A record whose arguments could not be stored (`UnstoredCallArgs`) is never flagged `requeue`.
        Sync and O(1); call it on the event loop thread only (from a worker thread, go through
        `anyio.from_thread.run_sync`). The record is copied when its batch is taken, so the latest state
        at that moment is what gets written.
        """
        batch = self._where.get(record.task_id)
        if batch is None:
            batch = self._queue[-1] if self._queue else None
            if batch is None or len(batch.records) >= self._max_batch:
                batch = _Batch(self._next_seq)
                self._next_seq += 1
                self._queue.append(batch)
            self._where[record.task_id] = batch
        if requeue and type(record.args) is UnstoredCallArgs:
            requeue = False  # only display forms of its arguments are stored: it can never be re-run
        batch.records[record.task_id] = (record, requeue)
        wake = self._wake
        if wake is not None:  # set once: the records queued after it join the same batch anyway
            self._wake = None
            wake.set()
        return batch.seq

    def queued_batch(self, task_id: str) -> int | None:
        """The batch that will carry the task's latest state, if one is queued and not yet taken, else None.

        A queued record is copied when its batch is taken, so waiting for this batch makes its current state
        durable without enqueueing it again.
        """
        batch = self._where.get(task_id)
        return None if batch is None else batch.seq

    async def wait_committed(self, seq: int) -> None:
        """Return once batch `seq` and every batch before it are committed.

        Raises `RuntimeError` if the writer stopped with that batch unwritten, `ValueError` for a sequence
        number `enqueue` never returned.
        """
        if seq >= self._next_seq:
            raise ValueError(f"batch {seq} was never issued (the newest is {self._next_seq - 1})")
        if self._committed >= seq:
            await checkpoint()
            return
        while self._committed < seq:  # each wait is a checkpoint of its own
            if self._state is _State.STOPPED:
                raise RuntimeError(f"the batch writer stopped before batch {seq} was committed")
            if self._committed_event is None:
                self._committed_event = anyio.Event()
            await self._committed_event.wait()

    async def flush(self) -> None:
        """Commit everything enqueued so far, now (inline if `run()` is not running)."""
        target = self._next_seq - 1
        if self._state is _State.RUNNING:
            wake, self._wake = self._wake, None
            if wake is not None:
                wake.set()
            await self.wait_committed(target)
            return
        await checkpoint()
        while self._committed < target and self._queue:
            await self._commit_next()

    def statistics(self) -> WriterStatistics:
        """A frozen snapshot of queue depth, commits and failures."""
        return WriterStatistics(
            queued=self._queued(),
            batches=self._batches,
            records_written=self._records_written,
            failures=self._failures,
            last_error=self._last_error,
            retrying=self._retrying,
            write_seconds=self._write_seconds,
        )

    def _queued(self) -> int:
        return self._in_flight + sum(len(b.records) for b in self._queue)

    # ---- the loop --------------------------------------------------------------------------------------

    async def run(self, *, task_status: AnyioTaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Commit queued batches until cancelled, then flush what is left within `shutdown_timeout`."""
        if self._state is not _State.NEW:
            raise RuntimeError(f"a BatchWriter runs once; this one is {self._state.value}")
        self._state = _State.RUNNING
        task_status.started()
        try:
            while True:
                if not self._queue:
                    self._wake = wake = anyio.Event()
                    await wake.wait()
                    continue
                await self._commit_next()
        finally:
            with anyio.move_on_after(self._shutdown_timeout, shield=True):
                while self._queue:
                    await self._commit_next()
            self._state = _State.STOPPED
            self._notify_committed()  # waiters of unwritten batches wake up and raise

    def _take(self) -> tuple[int, dict[str, tuple[TaskRecord, bool]]]:
        """Pop the oldest batch, merged with the following ones while the total fits in `max_batch`."""
        first = self._queue.popleft()
        seq, merged = first.seq, dict(first.records)
        while self._queue and len(merged) + len(self._queue[0].records) <= self._max_batch:
            later = self._queue.popleft()
            seq = later.seq
            merged.update(later.records)  # a later copy of a record is its newer state
        for task_id in merged:
            if self._where.get(task_id) is not None and self._where[task_id].seq <= seq:
                del self._where[task_id]
        return seq, merged

    def _put_back(self, seq: int, records: dict[str, tuple[TaskRecord, bool]]) -> None:
        """Return a failed batch to the front; records re-enqueued meanwhile keep their newer copy."""
        batch = _Batch(seq, records)
        self._queue.appendleft(batch)
        for task_id in records:
            self._where.setdefault(task_id, batch)

    async def _commit_next(self) -> None:
        """Write the front of the queue, retrying with backoff until it commits (or we are cancelled)."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:  # one committer at a time, so batches commit in sequence order
            if self._queue:
                await self._commit_front()

    async def _commit_front(self) -> None:
        attempt = 0
        while True:
            seq, entries = self._take()
            # Copies made here, on the loop thread: the store's thread must not read records being changed.
            records = [copy_record(record) for record, _ in entries.values()]
            requeue_ids = frozenset(task_id for task_id, (_, requeue) in entries.items() if requeue)
            self._in_flight = len(records)
            began = time.perf_counter()
            try:
                await self.store.write(records, owner=self.owner, requeue_ids=requeue_ids)
            except Exception as exc:
                self._in_flight = 0
                self._put_back(seq, entries)
                attempt += 1
                self._failures += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                self._retrying = True
                await anyio.sleep(backoff_delay(attempt, base=self._retry_delay, cap=self._max_retry_delay))
                continue
            except BaseException:  # cancelled mid-write: the batch may or may not be in; write it again
                self._in_flight = 0
                self._put_back(seq, entries)
                raise
            self._in_flight = 0
            self._retrying = False
            self._write_seconds += time.perf_counter() - began
            self._batches += 1
            self._records_written += len(records)
            self._committed = seq
            self._notify_committed()
            return

    def _notify_committed(self) -> None:
        event, self._committed_event = self._committed_event, None
        if event is not None:
            event.set()
