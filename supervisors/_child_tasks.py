"""The native tasks supervised children run in: one per child, inside one host task that the supervisor's
anyio task group owns (`TrioChildTasks` lives in `_trio_tasks`, imported only on trio).

Why not `TaskGroup.start_soon` per child: since anyio 4.14 every spawn also builds a `TaskHandle` (with its
own `CancelScope` and `Event`) and a wrapper coroutine, several times the cost of asyncio's
`loop.create_task` or trio's `nursery.start_soon` (docs/benchmarks.md has the figures). A supervisor spawns
a task per child (taskflow: per background task), so that was the largest cost of a task. The host keeps
what the task group gave us:

- no child outlives the supervisor: the host returns only once every child task has ended;
- a cancellation of the task group reaches every child (trio: the host's nursery is inside the task
  group's scope; asyncio: the host cancels each child's own cancel scope, which respects shields inside the
  child, then waits for the children, shielded);
- an exception a child task raises (an escalation) is raised by the host into the task group, which cancels
  the supervisor's owner as before.

Only public APIs: asyncio's running loop and `create_task`, trio's `open_nursery`.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Protocol

import anyio
from anyio.abc import TaskStatus

from ._exceptions import find_restart_limit, leaves

ChildCoroutine = Callable[..., Coroutine[Any, Any, None]]


class ChildTasks(Protocol):
    """What a supervisor needs from its host task: spawn children, then let the host return."""

    def spawn(
        self, fn: ChildCoroutine, args: tuple[Any, ...], name: str, context: contextvars.Context | None
    ) -> None: ...

    def close(self) -> None: ...

    async def run(self, *, task_status: TaskStatus[ChildTasks]) -> None: ...


class ChildTaskGroup:
    """A root supervisor's anyio task group and the host task in it, where every child of the tree runs.

    `spawn(fn, args, name, context)` starts a child task; `start()` is the task group's own (for
    `Supervisor.start()`); `cancel_children` is called when the host stops every child (asyncio).
    """

    __slots__ = ("_cancel_children", "_host", "_tg", "spawn")

    def __init__(self, cancel_children: Callable[[], None]) -> None:
        self._cancel_children = cancel_children
        self._tg = anyio.create_task_group()
        self._host: ChildTasks | None = None
        self.spawn: Callable[[ChildCoroutine, tuple[Any, ...], str, contextvars.Context | None], None]

    async def open(self) -> None:
        tg = self._tg
        await tg.__aenter__()
        try:
            self._host = host = await tg.start(make_child_tasks(self._cancel_children).run)
        except BaseException as error:
            await tg.__aexit__(type(error), error, error.__traceback__)
            raise
        self.spawn = host.spawn  # the host's own method: no extra call per child

    def start_soon(self, fn: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        """Start a task of the supervisor's own (a thread lane's worker) in the task group."""
        self._tg.start_soon(fn, name=name)

    async def start(self, fn: Callable[..., Coroutine[Any, Any, None]], *args: Any, name: str) -> Any:
        return await self._tg.start(fn, *args, name=name)

    async def close(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        body_error: BaseException | None,
    ) -> bool | None:
        """Let the host return once the remaining child tasks have ended and exit the task group with
        `exc`; `body_error` is the supervisor's `async with` body's own, propagated unwrapped."""
        assert self._host is not None
        self._host.close()
        try:
            return await self._tg.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            # An escalation is the supervisor's verdict, not one failure among others: raise it as is.
            limit = find_restart_limit(group)
            if limit is not None:
                raise limit from limit.last_error
            if body_error is not None and all(leaf is body_error for leaf in leaves(group)):
                return False  # only the body's own error: let it propagate unwrapped, as it was raised
            raise


def make_child_tasks(cancel_children: Callable[[], None]) -> ChildTasks:
    """The host for the running backend; `cancel_children` cancels each child's own scope (asyncio).

    anyio runs on asyncio or trio: a running asyncio loop in this thread means asyncio, none means trio.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        # Imported here, not at the top: trio is an optional dependency, present whenever it is running.
        from ._trio_tasks import TrioChildTasks

        return TrioChildTasks()
    return AsyncioChildTasks(cancel_children)


class AsyncioChildTasks:
    """Children as asyncio tasks that this host holds (asyncio keeps only weak references to tasks)."""

    __slots__ = (
        "_cancel_children",
        "_closed",
        "_create_task",
        "_done",
        "_done_context",
        "_errors",
        "_tasks",
        "_wakeup",
    )

    def __init__(self, cancel_children: Callable[[], None]) -> None:
        self._cancel_children = cancel_children
        self._tasks: set[asyncio.Task[None]] = set()
        self._errors: list[BaseException] = []
        self._closed = False
        self._wakeup: asyncio.Future[None] | None = None
        self._create_task: Callable[..., asyncio.Task[None]] | None = None
        self._done = self._task_done  # one bound method for every child's done callback
        # ...run in one empty context: without one, asyncio would copy the spawner's context per child.
        self._done_context = contextvars.Context()

    def spawn(
        self, fn: ChildCoroutine, args: tuple[Any, ...], name: str, context: contextvars.Context | None
    ) -> None:
        create_task = self._create_task
        assert create_task is not None, "the host is not running"
        # Like trio (and anyio), the child runs in a copy: what it sets stays its own.
        task = create_task(fn(*args), name=name, context=None if context is None else context.copy())
        self._tasks.add(task)
        task.add_done_callback(self._done, context=self._done_context)

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            error = task.exception()
            if error is not None:
                self._errors.append(error)
                self._wake()
                return
        if not self._tasks and self._closed:
            self._wake()

    async def run(self, *, task_status: TaskStatus[ChildTasks]) -> None:
        loop = asyncio.get_running_loop()
        self._create_task = loop.create_task
        task_status.started(self)
        try:
            while not self._errors and not (self._closed and not self._tasks):
                self._wakeup = loop.create_future()
                await self._wakeup
        except BaseException:  # the task group is going down: so do the children, then this host
            await self._stop_children()
            if self._errors:  # raised by children as they stopped: never swallowed by the cancellation
                raise BaseExceptionGroup("supervised children failed", self._take_errors()) from None
            raise
        if self._errors:  # a child escalated: stop its siblings and hand the error to the task group
            await self._stop_children()
            errors = self._take_errors()
            if len(errors) == 1:
                raise errors[0]
            raise BaseExceptionGroup("supervised children failed", errors)

    def _take_errors(self) -> list[BaseException]:
        errors, self._errors = self._errors, []
        return errors

    async def _stop_children(self) -> None:
        self._cancel_children()
        with anyio.CancelScope(shield=True):
            loop = asyncio.get_running_loop()
            while self._tasks:
                self._closed = True
                self._wakeup = loop.create_future()
                await self._wakeup
