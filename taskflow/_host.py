"""Runs the task runtime without an `async with`: for `await startup()` / `await shutdown()` callers.

fastapi-taskflow exposes `startup()` and `shutdown()` coroutines, which a user may call from a lifespan of
their own. A structured task group cannot outlive the call that opens it, so `startup()` starts a host task
owned by the event loop itself (an asyncio task, or a trio system task) that holds `runtime.running()` open
until `shutdown()` asks it to close, and waits for it to finish.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio

from ._eventloop import current_backend

if TYPE_CHECKING:
    from ._runtime import TaskRuntime

_log = logging.getLogger("taskflow")


class RuntimeHost:
    """Holds a runtime's lifespan open from `start()` until `stop()`."""

    def __init__(self, runtime: TaskRuntime) -> None:
        self._runtime = runtime
        self._started = anyio.Event()
        self._stop = anyio.Event()
        self._finished = anyio.Event()
        self._error: BaseException | None = None

    async def _main(self) -> None:
        try:
            async with self._runtime.running():
                self._started.set()
                await self._stop.wait()
        except Exception as exc:  # reported to whoever waits in start()/stop()
            self._error = exc
            _log.exception("the task runtime stopped with an error")
        finally:
            self._started.set()
            self._finished.set()

    async def start(self) -> None:
        """Start the host task and return once the runtime accepts tasks."""
        _spawn_on_loop(self._main)
        await self._started.wait()
        if self._error is not None:
            raise self._error

    async def stop(self) -> None:
        """Ask the runtime to shut down gracefully and wait until it has."""
        self._stop.set()
        await self._finished.wait()


def _spawn_on_loop(main: Callable[[], Awaitable[None]]) -> None:
    if current_backend() == "trio":
        import trio

        trio.lowlevel.spawn_system_task(main)
    else:
        import asyncio

        async def run() -> None:
            await main()

        task = asyncio.get_running_loop().create_task(run())
        _background.add(task)
        task.add_done_callback(_background.discard)


_background: set[object] = set()  # strong references, so the host task is not garbage-collected
