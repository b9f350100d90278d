"""The attempt loop: one *run* of a child (up to `policy.attempts` attempts), shared by `Supervisor` and
`run_supervised`, plus `Site`, the little that loop needs from its owner (hooks, clock, limiters, counters).

This is the hot path (taskflow spawns ~10^5 children/s): no event objects without hooks (observers get the
handle itself), no limiter calls without limits, no timeout scope without a timeout, no per-attempt
allocations beyond the child's own.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import math
import types
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._clock import Clock
from ._config import CONFIG
from ._events import (
    AttemptFailed,
    AttemptStarted,
    Cancelled,
    ChildEvent,
    ChildObserver,
    Failed,
    HookFn,
    Interrupted,
    RetryScheduled,
    Succeeded,
    dispatch,
    notify,
)
from ._handle import ChildHandle, ChildState
from ._policy import Policy

logger = logging.getLogger("supervisors")

_PENDING, _RUNNING, _RETRYING = ChildState.PENDING, ChildState.RUNNING, ChildState.RETRYING
_child_ids = itertools.count(1)
next_child_id = _child_ids.__next__  # itertools.count is atomic under the GIL: ids increase per process


def callable_name(fn: Callable[..., Any]) -> str:
    """A readable default child name: the function's qualified name (through partials)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__qualname__", None) or getattr(type(fn), "__qualname__", None)
    return name if isinstance(name, str) else repr(fn)


_CALLABLE_CLASSES: dict[type, bool] = {}  # class of a callable object -> whether its __call__ is async


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """True for async functions, partials of them, and objects with an async `__call__`."""
    # Fast paths for the overwhelmingly common cases: a plain function, or an object of a class seen before.
    kind = type(fn)
    if kind is types.FunctionType:
        return bool(fn.__code__.co_flags & inspect.CO_COROUTINE)
    known = _CALLABLE_CLASSES.get(kind)
    if known is not None:
        return known
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004  (we need the method itself, not callable())
    is_async = call is not None and not inspect.isfunction(fn) and inspect.iscoroutinefunction(call)
    class_call = getattr(kind, "__call__", None)  # noqa: B004  (the class's own method, as above)
    if inspect.isfunction(class_call) and len(_CALLABLE_CLASSES) < 1024:
        # An instance of a class defining __call__ in Python: the answer holds for every instance. (Not so
        # for partials, methods or C wrappers such as lru_cache's: those depend on what they wrap.)
        _CALLABLE_CLASSES[kind] = is_async
    return is_async


async def acquire_all(limiters: tuple[anyio.CapacityLimiter, ...]) -> None:
    """Acquire every limiter in order (innermost first, the same order for everyone: no deadlock)."""
    taken = 0
    try:
        for limiter in limiters:
            await limiter.acquire()
            taken += 1
    except BaseException:
        release_all(limiters[:taken])
        raise


def release_all(limiters: tuple[anyio.CapacityLimiter, ...]) -> None:
    for limiter in reversed(limiters):
        limiter.release()


class Site:
    """Where children run: the supervisor's name, hooks, clock, limiter chains and counters."""

    __slots__ = (
        "cancelled",
        "clock",
        "failed",
        "hooks",
        "interrupted",
        "limiters",
        "name",
        "on_attempt_failed",
        "on_attempt_started",
        "on_finished",
        "on_retry_scheduled",
        "retrying",
        "run_sync_limiter",
        "running",
        "started",
        "succeeded",
        "thread_limiters",
        "waiting",
        "watched",
    )

    def __init__(
        self,
        name: str,
        hooks: tuple[HookFn, ...],
        clock: Clock,
        limiters: tuple[anyio.CapacityLimiter, ...] = (),
        thread_limiters: tuple[anyio.CapacityLimiter, ...] = (),
        run_sync_limiter: anyio.CapacityLimiter | None = None,
        observers: tuple[ChildObserver, ...] = (),
    ) -> None:
        self.name = name
        self.hooks = hooks
        # Each observer method resolved once (they are called on every attempt).
        self.on_attempt_started = tuple(o.attempt_started for o in observers)
        self.on_attempt_failed = tuple(o.attempt_failed for o in observers)
        self.on_retry_scheduled = tuple(o.retry_scheduled for o in observers)
        self.on_finished = tuple(o.finished for o in observers)
        self.watched = bool(hooks or observers)  # one test on the hot path when nobody watches
        self.clock = clock
        self.limiters = limiters  # acquired around each async attempt
        self.thread_limiters = thread_limiters  # acquired around each sync attempt
        self.run_sync_limiter = run_sync_limiter  # handed to to_thread.run_sync (None: anyio's default)
        self.running = self.waiting = self.retrying = self.started = 0
        self.succeeded = self.failed = self.cancelled = self.interrupted = 0

    @classmethod
    def for_chain(
        cls,
        name: str,
        hooks: tuple[HookFn, ...],
        clock: Clock,
        limiters: list[anyio.CapacityLimiter],
        thread_limiters: list[anyio.CapacityLimiter],
        observers: tuple[ChildObserver, ...] = (),
    ) -> Site:
        """A site acquiring `limiters` / `thread_limiters` (innermost first) around each attempt."""
        # With thread caps we acquire them ourselves (in order), so anyio's default thread limiter must not
        # cap the threads a second time: hand run_sync an unlimited one instead.
        run_sync_limiter = anyio.CapacityLimiter(math.inf) if thread_limiters else None
        return cls(name, hooks, clock, tuple(limiters), tuple(thread_limiters), run_sync_limiter, observers)

    def emit(self, event_type: type[ChildEvent], handle: ChildHandle, **fields: Any) -> None:
        """Build and dispatch an event. Callers check `self.hooks` first, so this runs only with hooks."""
        event = event_type(
            supervisor=self.name,
            child_id=handle.id,
            name=handle.name,
            key=handle.key,
            attempt=handle.attempts,
            timestamp=self.clock.now(),
            **fields,
        )
        dispatch(self.hooks, event)  # type: ignore[arg-type]  # every concrete ChildEvent is an Event

    def finish(self, handle: ChildHandle, state: ChildState, reason: str | None = None) -> bool:
        """Move `handle` to a final state exactly once (later calls are no-ops), count it, tell the hooks
        and wake its waiters. Returns False if it was already finished."""
        if handle._final is not None:
            return False
        handle._final = state
        handle.reason = reason
        if state is ChildState.SUCCEEDED:
            self.succeeded += 1
            if self.hooks:
                self.emit(Succeeded, handle, result=handle.result)
        elif state is ChildState.FAILED:
            self.failed += 1
            # A GaveUp event (emitted by the restart logic) is the terminal event of "restart_limit".
            if self.hooks and reason != "restart_limit" and handle.error is not None:
                self.emit(Failed, handle, error=handle.error, reason=reason or "error")
        elif state is ChildState.CANCELLED:
            self.cancelled += 1
            if self.hooks:
                self.emit(Cancelled, handle, reason=reason or "cancelled")
        else:
            self.interrupted += 1
            if self.hooks:
                self.emit(
                    Interrupted,
                    handle,
                    reason=reason or "shutdown",
                    checkpoint=handle.checkpoint_result,
                    checkpoint_error=handle.checkpoint_error,
                )
        if self.on_finished:
            notify(self.on_finished, handle)
        if handle._done is not None:
            handle._done.set()
        return True


def _should_retry(policy: Policy, error: BaseException) -> bool:
    try:
        return policy.should_retry(error)
    except Exception:
        # A broken retry_on predicate must not crash the supervisor: treat the error as final.
        logger.exception("Policy %r: retry_on raised while classifying %r; not retrying", policy.name, error)
        return False


async def run_once(site: Site, handle: ChildHandle) -> tuple[bool, object, str | None]:
    """Run one run of `handle`'s child: up to `policy.attempts` attempts with backoff between them.

    Returns `(True, result, None)` or `(False, last_error, reason)` with reason "error", "timeout" or
    "not_retryable". The child's errors are returned, never raised; cancellation always propagates.
    """
    policy = handle.policy
    fn, args = handle._fn, handle._args
    is_async = handle._is_async
    limiters = site.limiters if is_async else site.thread_limiters
    timeout = policy.timeout
    attempt = 0
    while True:
        attempt += 1
        handle.attempts = attempt
        if limiters:
            handle._phase = _PENDING
            site.waiting += 1
            try:
                await acquire_all(limiters)
            finally:
                site.waiting -= 1
        handle._phase = _RUNNING
        site.running += 1
        reason = "error"
        try:
            if site.watched:
                if site.hooks:
                    site.emit(AttemptStarted, handle)
                if site.on_attempt_started:
                    notify(site.on_attempt_started, handle)
            if timeout is None:
                if is_async:
                    return True, await fn(*args), None
                return (
                    True,
                    await anyio.to_thread.run_sync(
                        fn, *args, limiter=site.run_sync_limiter, abandon_on_cancel=True
                    ),
                    None,
                )
            # Our own scope (not fail_after) so a TimeoutError raised by the child itself stays an "error".
            with anyio.move_on_after(timeout) as scope:
                if is_async:
                    result = await fn(*args)
                else:
                    result = await anyio.to_thread.run_sync(
                        fn, *args, limiter=site.run_sync_limiter, abandon_on_cancel=True
                    )
            if not scope.cancelled_caught:
                return True, result, None
            reason = "timeout"
            raise TimeoutError(f"Attempt {attempt} of {handle.name!r} timed out after {timeout} s")
        except Exception as exc:
            error: Exception = exc
        finally:
            site.running -= 1
            if limiters:
                release_all(limiters)

        retryable = handle._retryable and attempt < policy.attempts
        will_retry = retryable and _should_retry(policy, error)
        if site.watched:
            if site.hooks:
                site.emit(AttemptFailed, handle, error=error, will_retry=will_retry, reason=reason)
            if site.on_attempt_failed:
                notify(site.on_attempt_failed, handle, error, will_retry, reason)
        if not will_retry:
            return False, error, "not_retryable" if retryable else reason
        delay = policy.backoff_delay(attempt)
        if site.watched:
            if site.hooks:
                site.emit(RetryScheduled, handle, delay=delay, error=error)
            if site.on_retry_scheduled:
                notify(site.on_retry_scheduled, handle, delay, error)
        handle._phase = _RETRYING
        site.retrying += 1
        try:
            if CONFIG.testing:
                await anyio.lowlevel.checkpoint()  # stay cancellable even when waits are skipped
            else:
                await site.clock.sleep(delay)
        finally:
            site.retrying -= 1
