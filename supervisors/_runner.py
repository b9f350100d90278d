"""The attempt loop: one *run* of a child (up to `policy.attempts` attempts), shared by `Supervisor` and
`run_supervised`, plus `ChildEnvironment`, the little that loop needs from its owner (hooks, clock,
limiters, counters).

This is the hot path (taskflow runs a child per background task): no event objects without hooks
(observers get the handle itself), no limiter calls without limits, no timeout scope without a timeout, no
per-attempt allocations beyond the child's own.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, Protocol

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
from ._lane import LaneJob, ThreadLane
from ._policy import Policy

logger = logging.getLogger("supervisors")

_PENDING, _RUNNING, _RETRYING = ChildState.PENDING, ChildState.RUNNING, ChildState.RETRYING


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


class ChildEnvironment:
    """Where children run: the supervisor's name, hooks, clock, limiter chains and counters."""

    __slots__ = (
        "cancelled",
        "clock",
        "failed",
        "hooks",
        "interrupted",
        "lane",
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
        lane: ThreadLane | None = None,
    ) -> None:
        self.name = name
        self.lane = lane  # where sync attempts run (None: one to_thread.run_sync call each)
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
    def for_supervisor(
        cls,
        name: str,
        hooks: tuple[HookFn, ...],
        clock: Clock,
        observers: tuple[ChildObserver, ...],
        limiter: anyio.CapacityLimiter | None,
        thread_limiter: anyio.CapacityLimiter | None,
        parent: ChildEnvironment | None,
        lane: ThreadLane | None = None,
    ) -> ChildEnvironment:
        """The env of a supervisor with these limiters whose parent supervisor has `parent` (None: a root).

        Its children acquire the supervisor's own limiter, then the ancestors' (the parent env's chain):
        innermost first, the one acquisition order every child follows. Its sync children run on `lane`
        (given to the supervisor that owns one), else on the parent's.
        """
        if lane is None and parent is not None:
            lane = parent.lane
        limiters = (() if limiter is None else (limiter,)) + (parent.limiters if parent else ())
        thread_limiters = (() if thread_limiter is None else (thread_limiter,)) + (
            parent.thread_limiters if parent else ()
        )
        # With thread caps we acquire them ourselves (in order), so anyio's default thread limiter must not
        # cap the threads a second time: hand run_sync an unlimited one instead.
        run_sync_limiter = anyio.CapacityLimiter(math.inf) if thread_limiters else None
        return cls(name, hooks, clock, limiters, thread_limiters, run_sync_limiter, observers, lane)

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

    def finished(self, handle: ChildHandle, state: ChildState, reason: str | None) -> None:
        """Count a child that just reached its final `state` and tell the hooks and observers (called once
        per child, by `ChildHandle._finish`)."""
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


def _should_retry(policy: Policy, error: BaseException) -> bool:
    try:
        return policy.should_retry(error)
    except Exception:
        # A broken retry_on predicate must not crash the supervisor: treat the error as final.
        logger.exception("Policy %r: retry_on raised while classifying %r; not retrying", policy.name, error)
        return False


def _attempt_started(env: ChildEnvironment, handle: ChildHandle) -> None:
    """An attempt's body starts: count it as running and tell the hooks and observers."""
    handle._set_phase(_RUNNING)
    env.running += 1
    if env.watched:
        if env.hooks:
            env.emit(AttemptStarted, handle)
        if env.on_attempt_started:
            notify(env.on_attempt_started, handle)


def lane_attempt_started(job: LaneJob) -> None:
    """A lane worker starts the body of `job` (called on the loop, in the order the worker sent it)."""
    env, handle = job.owner
    env.waiting -= 1
    _attempt_started(env, handle)


def lane_attempt_wanted(job: LaneJob) -> bool:
    """Whether the attempt of `job` may still start (asked in a lane worker: a cancelled or interrupted
    handle says so at once, before its task is woken)."""
    handle: ChildHandle = job.owner[1]
    return handle._runnable


def lane_attempt_ended(job: LaneJob) -> None:
    """A lane worker ended the body of `job` (on the loop, before the worker's next start is handled)."""
    job.owner[0].running -= 1


async def _run_in_lane(
    lane: ThreadLane,
    env: ChildEnvironment,
    handle: ChildHandle,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
) -> Any:
    """One sync attempt on the lane: queued (PENDING, counted as waiting) until a worker starts its body,
    then running until the worker ends it (the lane calls `lane_attempt_started` / `lane_attempt_ended`)."""
    handle._set_phase(_PENDING)
    job = lane.submit(fn, args, (env, handle))
    env.waiting += 1
    try:
        await lane.wait(job)
    except BaseException:
        if job.notes < 2:  # not ended yet: cancelled or timed out, never run or abandoned to its worker
            lane.withdraw(job)
            if job.started:
                env.running -= 1
            else:
                env.waiting -= 1
        raise
    if job.ok:
        return job.value
    error = job.value
    job.value = None
    raise error


class RetryGate(Protocol):
    """Whether a failed attempt may still be retried (a child started with `Supervisor.start()`: only
    until it reported itself started)."""

    retryable: bool


async def run_once(
    env: ChildEnvironment,
    handle: ChildHandle,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    is_async: bool,
    gate: RetryGate | None = None,
) -> tuple[bool, object, str | None]:
    """Run one run of `handle`'s child: up to `policy.attempts` attempts with backoff between them.

    Returns `(True, result, None)` or `(False, last_error, reason)` with reason "error", "timeout" or
    "not_retryable". The child's errors are returned, never raised; cancellation always propagates.
    """
    policy = handle.policy
    limiters = env.limiters if is_async else env.thread_limiters
    lane = None if is_async else env.lane
    timeout = policy.timeout
    attempt = 0
    while True:
        attempt += 1
        handle.attempts = attempt
        if limiters:
            handle._set_phase(_PENDING)
            env.waiting += 1
            try:
                await acquire_all(limiters)
            finally:
                env.waiting -= 1
        reason = "error"
        if lane is None:
            _attempt_started(env, handle)  # on the lane, the worker tells us as it starts the body
        try:
            if timeout is None:
                if is_async:
                    return True, await fn(*args), None
                if lane is None:
                    return (
                        True,
                        await anyio.to_thread.run_sync(
                            fn, *args, limiter=env.run_sync_limiter, abandon_on_cancel=True
                        ),
                        None,
                    )
                return True, await _run_in_lane(lane, env, handle, fn, args), None
            # Our own scope (not fail_after) so a TimeoutError raised by the child itself stays an "error".
            with anyio.move_on_after(timeout) as scope:
                if is_async:
                    result = await fn(*args)
                elif lane is None:
                    result = await anyio.to_thread.run_sync(
                        fn, *args, limiter=env.run_sync_limiter, abandon_on_cancel=True
                    )
                else:
                    result = await _run_in_lane(lane, env, handle, fn, args)
            if not scope.cancelled_caught:
                return True, result, None
            reason = "timeout"
            raise TimeoutError(f"Attempt {attempt} of {handle.name!r} timed out after {timeout} s")
        except Exception as exc:
            error: Exception = exc
        finally:
            if lane is None:
                env.running -= 1
            if limiters:
                release_all(limiters)

        retryable = (gate is None or gate.retryable) and attempt < policy.attempts
        will_retry = retryable and _should_retry(policy, error)
        if env.watched:
            if env.hooks:
                env.emit(AttemptFailed, handle, error=error, will_retry=will_retry, reason=reason)
            if env.on_attempt_failed:
                notify(env.on_attempt_failed, handle, error, will_retry, reason)
        if not will_retry:
            return False, error, "not_retryable" if retryable else reason
        delay = policy.backoff_delay(attempt)
        if env.watched:
            if env.hooks:
                env.emit(RetryScheduled, handle, delay=delay, error=error)
            if env.on_retry_scheduled:
                notify(env.on_retry_scheduled, handle, delay, error)
        handle._set_phase(_RETRYING)
        env.retrying += 1
        try:
            if CONFIG.testing:
                await anyio.lowlevel.checkpoint()  # stay cancellable even when waits are skipped
            else:
                await env.clock.sleep(delay)
        finally:
            env.retrying -= 1
