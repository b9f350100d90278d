"""Durability for the runtime: the batch writer, this instance's heartbeat, and the upkeep loop around them.

Every state change of every task is queued to one `BatchWriter` (group commit). A request that added
durable tasks (`persist=True`, or any task with `requeue_pending=True`) does not send its response until
the batch holding them is committed: the ASGI middleware of `taskflow.web` awaits `make_durable()` when
the response starts. Each process is an *instance* with a heartbeat in the store; every instance claims,
atomically, the PENDING and RUNNING tasks of instances whose heartbeat expired (a `kill -9`, an OOM) and
re-runs them or marks them INTERRUPTED. A store with feeds is followed too: every instance's idempotency key
claims (into the runtime's key mirror) and, for the dashboard, the records other instances write.

`Persistence` owns the writer, the heartbeat and the loop that keeps them; what that loop does besides is in
modules of their own: claiming and judging lost instances' tasks (`_recovery`), following the store's feeds
(`_store_feeds`), and the write-failure alarm (`_write_alarm`).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Protocol

import anyio
from anyio.abc import TaskStatus as AnyioTaskStatus

from ._models import TaskRecord, utcnow
from ._recovery import recover_orphans
from ._store_feeds import RemoteSink, RemoteSinks, follow_feeds
from ._table import SETTLED_KEYS_LIMIT
from ._write_alarm import WriteAlarm
from .stores import BatchWriter, RecoveredTask, TaskStore, WriterStatistics


class Adopter(Protocol):
    """What recovery hands orphaned tasks to (the runtime)."""

    def adopt(self, orphan: RecoveredTask) -> None: ...

    def report_store_problem(self, message: str, *, level: str) -> None: ...

    def mirror_key(self, key: str, holder: str | None) -> None: ...


_log = logging.getLogger("taskflow.store")

request_records: contextvars.ContextVar[list[TaskRecord] | None] = contextvars.ContextVar(
    "taskflow_request_records", default=None
)
"""Set by the web middleware for one request: the records added while handling it (any thread)."""

CLOSE_TIMEOUT = 10.0


class Persistence:
    """Connects a runtime to a `TaskStore` for the duration of `runtime.running()`."""

    def __init__(
        self,
        store: TaskStore,
        *,
        heartbeat_interval: float,
        heartbeat_ttl: float,
        retention_days: float | None,
        durable_timeout: float,
    ) -> None:
        self.store = store
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_ttl = heartbeat_ttl
        self.retention_days = retention_days
        self.durable_timeout = durable_timeout
        self.instance_id = ""
        self.writer: BatchWriter | None = None
        self._inbox: deque[tuple[TaskRecord, bool]] = deque()  # saves made off the loop thread
        self._loop_thread: int | None = None
        self._closing = False
        self._remote = RemoteSinks()

    @property
    def active(self) -> bool:
        """True while the writer runs (between `start()` and `close()`)."""
        return self.writer is not None and not self._closing

    async def start(self, task_group: anyio.abc.TaskGroup) -> None:
        """Open the store, start the writer in `task_group`, and announce this instance."""
        await self.store.open()
        self.instance_id = uuid.uuid4().hex
        self._loop_thread = threading.get_ident()
        self.writer = BatchWriter(self.store, owner=self.instance_id)
        self._closing = False
        await task_group.start(self.writer.run)
        await self.store.heartbeat(self.instance_id, ttl=self.heartbeat_ttl)

    async def settled_keys(self) -> dict[str, str]:
        """Idempotency keys of succeeded tasks in the store (preloaded so add_task can answer at once)."""
        try:
            return await self.store.held_keys(limit=SETTLED_KEYS_LIMIT)
        except Exception:
            _log.exception("could not load idempotency keys from the store")
            return {}

    def save(self, record: TaskRecord, *, requeue: bool) -> int | None:
        """Queue the record's current state (any thread). Returns the batch number on the loop thread."""
        writer = self.writer
        if writer is None:
            return None
        if threading.get_ident() != self._loop_thread:
            self._inbox.append((record, requeue))  # deque.append is thread-safe; drained on the loop
            return None
        if self._inbox:
            self._drain_inbox()
        return writer.enqueue(record, requeue=requeue)

    def _drain_inbox(self) -> None:
        writer = self.writer
        assert writer is not None
        inbox = self._inbox
        while inbox:
            record, requeue = inbox.popleft()
            writer.enqueue(record, requeue=requeue)

    async def make_durable(
        self, records: Sequence[TaskRecord], requeue_of: Callable[[TaskRecord], bool]
    ) -> bool:
        """Commit these records now; False if the store did not confirm within `durable_timeout`."""
        writer = self.writer
        if writer is None or not records:
            return True
        if self._inbox:
            self._drain_inbox()
        seq = 0
        for record in records:
            # Most records are still queued since add_task saved them: wait for that batch. The others (their
            # batch already taken, or saved before the writer started) are saved again.
            batch = writer.queued_batch(record.task_id)
            if batch is None:
                batch = self.save(record, requeue=requeue_of(record)) or 0
            if batch > seq:
                seq = batch
        with anyio.move_on_after(self.durable_timeout):
            await writer.wait_committed(seq)
            return True
        _log.error(
            "the task store did not commit within %.1f s: %s", self.durable_timeout, writer.statistics()
        )
        return False

    async def wait_committed(self, batch: int) -> None:
        """Wait until batch `batch` (a number `save` returned) is committed."""
        writer = self.writer
        if writer is not None:
            await writer.wait_committed(batch)

    async def sync(self) -> None:
        """Wait until every state queued so far is committed (before reading history from the store)."""
        writer = self.writer
        if writer is None:
            return
        self._drain_inbox()
        with anyio.move_on_after(self.durable_timeout):
            await writer.flush()

    def watch_remote(self, sink: RemoteSink) -> Callable[[], None]:
        """Send `sink` the records other instances write (a store with a change feed only); returns the
        call that stops it. Register before the lifespan starts: the feed is followed only if a sink is."""
        return self._remote.watch(sink)

    async def maintain(
        self, runtime: Adopter, *, task_status: AnyioTaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Heartbeat, recover orphaned tasks, prune old history and follow the store's feeds, until cancelled.

        Reports started once the feeds are live (or after `_store_feeds.FEED_START_TIMEOUT` if the store
        does not answer), so a key claimed or a task written after the app serves is never missed.
        """
        await recover_orphans(self.store, self.instance_id, runtime.adopt)
        async with anyio.create_task_group() as tg:
            await follow_feeds(
                tg,
                self.store,
                self.instance_id,
                mirror_key=runtime.mirror_key,
                remote=self._remote,
                retry_cap=self.heartbeat_interval,
            )
            task_status.started()
            await self._beat(runtime)

    async def _beat(self, runtime: Adopter) -> None:
        last_prune = -1e18
        alarm = WriteAlarm()
        while True:
            await anyio.sleep(self.heartbeat_interval)
            if self._inbox:
                self._drain_inbox()
            alarm.check(self.statistics(), runtime)
            try:
                await self.store.heartbeat(self.instance_id, ttl=self.heartbeat_ttl)
                await recover_orphans(self.store, self.instance_id, runtime.adopt)
                now = anyio.current_time()
                if self.retention_days is not None and now - last_prune > 3600:
                    last_prune = now
                    await self.store.delete_before(utcnow() - timedelta(days=self.retention_days))
            except Exception:  # a failing store must never take the app down: try again next beat
                _log.exception("task store maintenance failed; retrying in %.1f s", self.heartbeat_interval)

    async def close(self) -> None:
        """Commit what is queued, withdraw this instance's heartbeat, close the store (bounded, shielded)."""
        writer = self.writer
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
            if writer is not None:
                self._drain_inbox()
                await writer.flush()
            self._closing = True
            try:
                await self.store.forget_instance(self.instance_id)
            except Exception:
                _log.exception("could not withdraw this instance's heartbeat")
        self.writer = None

    async def close_store(self) -> None:
        """Close the store once the writer has stopped."""
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
            await self.store.close()

    def statistics(self) -> WriterStatistics | None:
        """The writer's statistics while running."""
        return self.writer.statistics() if self.writer is not None else None
