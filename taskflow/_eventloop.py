"""Which event loop runs the current task, told by anyio's public API (`anyio.lowlevel.current_token`).

taskflow needs the native loop in two places: starting a host task owned by the loop itself (`_host`) and
calling into the loop from a worker thread without blocking (the dashboard's stream). anyio no longer
depends on sniffio, so asking sniffio would make it an undeclared dependency; anyio's token carries the
native object instead: the running asyncio loop, or trio's `TrioToken`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal

import anyio.lowlevel

__all__ = ["current_backend", "loop_caller", "threadsafe_caller"]


def _native_token() -> Any:
    return anyio.lowlevel.current_token().native_token


def current_backend() -> Literal["asyncio", "trio"]:
    """The name of the running event loop; anyio's `NoEventLoopError` outside one."""
    return "asyncio" if isinstance(_native_token(), asyncio.AbstractEventLoop) else "trio"


def threadsafe_caller() -> Callable[[Callable[[], None]], object]:
    """The running loop's non-blocking call-from-any-thread (anyio only offers a blocking one)."""
    token = _native_token()
    if isinstance(token, asyncio.AbstractEventLoop):
        return token.call_soon_threadsafe
    run_sync_soon: Callable[[Callable[[], None]], object] = token.run_sync_soon  # trio.lowlevel.TrioToken
    return run_sync_soon


def loop_caller() -> Callable[[Callable[[], None]], object]:
    """The running loop's cheapest way to call a function soon, from the loop's own thread only."""
    token = _native_token()
    if isinstance(token, asyncio.AbstractEventLoop):
        return token.call_soon
    run_sync_soon: Callable[[Callable[[], None]], object] = token.run_sync_soon  # trio has only this one
    return run_sync_soon
