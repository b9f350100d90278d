"""The children of one supervisor whose task has not exited yet: what a shutdown drains and interrupts, and
what the host cancels when it stops."""

from __future__ import annotations

import anyio

from ._handle import ChildHandle


class LiveChildren:
    """One supervisor's children from `start_soon()` / `start()` until their task exits."""

    __slots__ = ("_handles", "_idle")

    def __init__(self) -> None:
        self._handles: dict[int, ChildHandle] = {}
        self._idle: anyio.Event | None = None  # set when the last one exits; created only by a shutdown

    def add(self, handle: ChildHandle) -> None:
        self._handles[handle.id] = handle

    def exited(self, handle: ChildHandle) -> None:
        """The child's task has ended."""
        del self._handles[handle.id]
        handle._release()
        if not self._handles and self._idle is not None:
            self._idle.set()

    def unfinished(self) -> list[ChildHandle]:
        """The children that have no final state yet."""
        return [handle for handle in self._handles.values() if not handle._finished]

    def stop_all(self) -> None:
        """The host is stopping: cancel every running child, end every one not started yet."""
        for handle in list(self._handles.values()):
            handle._stop()

    async def wait_idle(self) -> None:
        """Wait until every child's task has exited."""
        while self._handles:
            self._idle = anyio.Event()
            await self._idle.wait()
