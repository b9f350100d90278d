"""`run_supervised`: the attempt loop run inline in the caller's task, without a supervisor task group."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVarTuple

import anyio

from ._call import callable_name, is_async_callable, next_child_id
from ._clock import Clock, SystemClock
from ._events import ChildObserver, Hook, normalize_hooks
from ._handle import CURRENT_HANDLE, ChildHandle, ChildState
from ._policy import Policy
from ._runner import ChildEnvironment, run_once

PosArgsT = TypeVarTuple("PosArgsT")

_DEFAULT_POLICY = Policy()


async def run_supervised(
    fn: Callable[[*PosArgsT], object],
    /,
    *args: *PosArgsT,
    policy: Policy = _DEFAULT_POLICY,
    name: str | None = None,
    key: Hashable | None = None,
    hooks: Sequence[Hook] = (),
    observers: Sequence[ChildObserver] = (),
    clock: Clock | None = None,
    limiter: anyio.CapacityLimiter | None = None,
    thread_limiter: anyio.CapacityLimiter | None = None,
) -> ChildHandle:
    """Run `fn(*args)` with `policy`'s retries and timeout in the current task; return the finished handle.

    Never raises the child's error (see `handle.state` / `handle.error`). `limiter` caps async attempts and
    `thread_limiter` sync ones (the policy's `max_concurrency`/`max_threads` need a supervisor to hold the
    limiter). `handle.cancel()` works; a cancellation of the caller marks the handle CANCELLED and
    propagates. Events name the supervisor "inline".
    """
    env = ChildEnvironment(
        "inline",
        normalize_hooks(hooks),
        clock if clock is not None else SystemClock(),
        limiters=(limiter,) if limiter is not None else (),
        run_sync_limiter=thread_limiter,
        observers=tuple(observers),
    )
    handle = ChildHandle(next_child_id(), callable_name(fn) if name is None else name, key, policy, env)
    env.started = 1
    token = CURRENT_HANDLE.set(handle)
    try:
        # The handle's own scope lets handle.cancel() stop the run without cancelling the caller.
        with handle._open_scope():
            ok, value, reason = await run_once(env, handle, fn, args, is_async_callable(fn))
            if ok:
                handle.result = value
            else:
                assert isinstance(value, BaseException)
                handle.error = value
            handle._finish(ChildState.SUCCEEDED if ok else ChildState.FAILED, reason)
    except anyio.get_cancelled_exc_class():
        handle._finish(ChildState.CANCELLED, "cancelled")
        raise
    finally:
        handle._release()
        CURRENT_HANDLE.reset(token)
    return handle
