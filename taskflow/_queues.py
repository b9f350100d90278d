"""Named queues: each with its own concurrency and `max_size`; inside one, higher priority first, FIFO within
a priority.

A task of a queue waits PENDING as a small entry (its id, priority and a sequence number in a heap), not as
a spawned actor: `Queues.ready` puts it in its queue's heap once its response is out, and a free slot hands
it to the launcher (`on_start`, the policy's supervisor while the lifespan runs) or wakes the request's
background item that runs it inline (no lifespan). A slot is freed by the task's own settlement, which the
lifecycle reports to `QueueSink` (terminal, or requeued at shutdown): no polling, no drainer task.

A task is counted in its queue from `reserve` (in `add_task`) until it settles: `max_size` bounds the
waiting ones (reserved or ready, not started), `concurrency` the started ones. What `update_queue_config`
changes applies at once: a higher concurrency starts waiting tasks, a lower one lets running ones finish.
Everything here runs under one lock (sync routes submit from worker threads); the starts are made after
the lock is released, on the event loop's thread (moved there when the trigger came from another one).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from ._eventloop import threadsafe_caller
from ._exceptions import ConfigurationError
from ._lifecycle import ChangeKind, TaskChange
from ._models import TaskStatus

DEFAULT_QUEUE = "default"
"""The queue of tasks that name none, when a queue of that name is declared (or `max_size=` is given)."""


def check_limit(name: str, value: object) -> int | None:
    """A queue limit: a positive int, or None for no limit; ConfigurationError otherwise."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigurationError(f"{name} must be a positive int or None, got {value!r}")
    return value


def check_priority(value: object) -> int:
    """A task priority: any int (higher runs first); ConfigurationError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"priority must be an int, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """The limits of a named queue (fastapi-taskflow 0.9's name): `concurrency` tasks of the queue run at
    once, `max_size` may wait; None is no limit."""

    concurrency: int | None = None
    max_size: int | None = None

    def __post_init__(self) -> None:
        check_limit("QueueConfig.concurrency", self.concurrency)
        check_limit("QueueConfig.max_size", self.max_size)


class _Entry:
    """One task counted in a queue: waiting (reserved, then ready) or started."""

    __slots__ = ("priority", "ready", "started", "task_id", "wake")

    def __init__(self, task_id: str, priority: int) -> None:
        self.task_id = task_id
        self.priority = priority
        self.ready = False  # its response is out: it may start
        self.started = False
        self.wake: Callable[[], object] | None = None  # set for a task run inline (no lifespan)


class _Queue:
    __slots__ = ("concurrency", "entries", "finished", "heap", "max_size", "name", "rejected", "running")

    def __init__(self, name: str, config: QueueConfig) -> None:
        self.name = name
        self.concurrency = config.concurrency
        self.max_size = config.max_size
        self.entries: dict[str, _Entry] = {}  # every task counted here, by id
        self.heap: list[tuple[int, int, _Entry]] = []  # (-priority, sequence, entry) of ready ones
        self.running = 0
        self.finished = 0
        self.rejected = 0

    @property
    def waiting(self) -> int:
        return len(self.entries) - self.running

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name, "concurrency": self.concurrency, "max_size": self.max_size,
            "pending": self.waiting, "running": self.running, "finished": self.finished,
            "rejected": self.rejected,
        }  # fmt: skip


class UnknownQueue(ConfigurationError, KeyError):
    """No queue has this name: a ConfigurationError at `@task`, a ValueError at `add_task`, a KeyError for
    `update_queue_config` (fastapi-taskflow 0.9 raised KeyError there)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Queues:
    """The named queues of one runtime (see the module docstring)."""

    def __init__(self, configs: Mapping[str, QueueConfig]) -> None:
        for name, config in configs.items():
            if not isinstance(name, str) or not name or len(name) > 100:
                raise ConfigurationError(f"queue names must be strings of 1 to 100 characters, got {name!r}")
            if not isinstance(config, QueueConfig):
                raise ConfigurationError(f"queue {name!r}: expected a QueueConfig, got {config!r}")
        self._queues = {name: _Queue(name, config) for name, config in configs.items()}
        self._where: dict[str, _Queue] = {}  # task id -> its queue, from reserve until it settles
        self._lock = threading.Lock()
        self._sequence = itertools.count()
        self.has_default = DEFAULT_QUEUE in self._queues
        self.closed = False  # shutdown began: nothing more is started
        # Set by the launcher: start a task handed a slot (called on the loop's thread).
        self.on_start: Callable[[str], None] = lambda task_id: None
        self._loop_thread: int | None = None
        self._soon_threadsafe: Callable[[Callable[[], None]], object] | None = None

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._where

    def names(self) -> list[str]:
        return sorted(self._queues)

    def check_name(self, name: str) -> str:
        """`name` if a queue has it; UnknownQueue naming the declared ones otherwise."""
        if name not in self._queues:
            known = ", ".join(sorted(self._queues)) or "none"
            raise UnknownQueue(f"no queue named {name!r} (declared queues: {known})")
        return name

    # -- the lifespan ----------------------------------------------------------------------------------

    def bind_loop(self) -> None:
        """Starts happen on the running loop's thread from now on (the lifespan started)."""
        with self._lock:
            self._loop_thread = threading.get_ident()
            self._soon_threadsafe = threadsafe_caller()
            self.closed = False

    def close(self) -> None:
        """Start nothing more (shutdown began: what waits is settled with the other pending tasks)."""
        with self._lock:
            self.closed = True

    def unbind_loop(self) -> None:
        """The lifespan ended: tasks run inline again, started where their slot frees."""
        with self._lock:
            self.closed = False
            self._loop_thread = self._soon_threadsafe = None

    # -- a task's way through its queue ----------------------------------------------------------------

    def reserve(self, name: str, task_id: str, priority: int, *, force: bool = False) -> bool:
        """Count a new task in queue `name`; False (and it is counted as rejected) when `max_size` wait,
        unless `force` (a task accepted once, taken over from the store)."""
        with self._lock:
            queue = self._queues[name]
            if not force and queue.max_size is not None and queue.waiting >= queue.max_size:
                queue.rejected += 1
                return False
            queue.entries[task_id] = _Entry(task_id, priority)
            self._where[task_id] = queue
        return True

    def count_rejected(self, name: str) -> None:
        """A task of queue `name` refused before it was reserved (the process backlog was full)."""
        with self._lock:
            self._queues[name].rejected += 1

    def ready(self, task_id: str, *, inline: bool = False) -> Callable[[], Any] | None:
        """The task may start (its response is out). Inline (no lifespan), the waiter for its slot is
        returned: an async callable to await before running it (already set when a slot was free)."""
        wait: Callable[[], Any] | None = None
        with self._lock:
            queue = self._where.get(task_id)
            entry = queue.entries.get(task_id) if queue is not None else None
            if queue is None or entry is None or entry.ready:
                return None  # settled meanwhile, or already ready
            if inline:
                event = anyio.Event()
                caller = threadsafe_caller()
                entry.wake = lambda: caller(event.set)
                wait = event.wait
            entry.ready = True
            heapq.heappush(queue.heap, (-entry.priority, next(self._sequence), entry))
            started = self._pump(queue)
        self._deliver(started)
        return wait

    def settled(self, task_ids: Iterable[str]) -> None:
        """These tasks settled (or were requeued at shutdown): free their slots, start what may start."""
        started: list[_Entry] = []
        with self._lock:
            for task_id in task_ids:
                queue = self._where.pop(task_id, None)
                if queue is None:
                    continue
                entry = queue.entries.pop(task_id)
                if entry.started:
                    queue.running -= 1
                    queue.finished += 1
                    started += self._pump(queue)
                elif entry.wake is not None:
                    entry.wake()  # its inline waiter returns and sees the task settled
                # A waiting entry stays in the heap, dropped when it comes up (`_pump` skips it).
        self._deliver(started)

    def _pump(self, queue: _Queue) -> list[_Entry]:
        """Take the entries that may start now (under the lock)."""
        if self.closed:
            return []
        started = []
        heap, entries, limit = queue.heap, queue.entries, queue.concurrency
        while heap and (limit is None or queue.running < limit):
            entry = heapq.heappop(heap)[2]
            if entries.get(entry.task_id) is not entry:
                continue  # settled while it waited
            entry.started = True
            queue.running += 1
            started.append(entry)
        return started

    def _deliver(self, started: Sequence[_Entry]) -> None:
        """Start the entries given a slot: wake inline waiters, hand the others to `on_start` on the loop."""
        if not started:
            return
        handed = [e.task_id for e in started if e.wake is None]
        for entry in started:
            if entry.wake is not None:
                entry.wake()
        if not handed:
            return
        soon = self._soon_threadsafe
        if soon is not None and threading.get_ident() != self._loop_thread:
            soon(lambda: self._start_all(handed))
        else:
            self._start_all(handed)

    def _start_all(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            self.on_start(task_id)

    # -- reading and resizing --------------------------------------------------------------------------

    def stats(self) -> list[dict[str, Any]]:
        """Per queue, by name: limits, waiting (`pending`), running, finished and rejected counts."""
        with self._lock:
            return [self._queues[name].stats() for name in sorted(self._queues)]

    def update(self, name: str, changes: Mapping[str, int | None]) -> dict[str, Any]:
        """Change some limits of queue `name` (the keys given only); its stats after the change."""
        queue = self._queues.get(name)
        if queue is None:
            self.check_name(name)
        assert queue is not None
        for key, value in changes.items():
            if key not in ("concurrency", "max_size"):
                raise ConfigurationError(f"unknown queue setting {key!r} (concurrency, max_size)")
            check_limit(key, value)
        with self._lock:
            if "concurrency" in changes:
                queue.concurrency = changes["concurrency"]
            if "max_size" in changes:
                queue.max_size = changes["max_size"]
            started = self._pump(queue)
            stats = queue.stats()
        self._deliver(started)
        return stats


_SETTLES_SLOT = ChangeKind.MOVED, ChangeKind.REQUEUED


class QueueSink:
    """Tells the queues which tasks settled (terminal, or requeued at shutdown), so their slots free at
    once. In the runtime's sinks only when queues are declared."""

    def __init__(self, queues: Queues) -> None:
        self.queues = queues

    @staticmethod
    def wants(kind: ChangeKind, status: TaskStatus) -> bool:
        return kind is ChangeKind.REQUEUED or (kind is ChangeKind.MOVED and status.is_terminal)

    def take(self, changes: Sequence[TaskChange]) -> None:
        queues = self.queues
        ids = [c.task_id for c in changes if c.task_id in queues]
        if ids:
            queues.settled(ids)
