"""The body of one supervised child task: its cancel scope, restarts and restart intensity, and the
shutdown path (shielded checkpoint with a deadline). The attempts themselves run in `_runner.run_once`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus

from ._call import Checkpoint
from ._events import GaveUp, Restarted
from ._exceptions import RestartLimitExceeded
from ._handle import CURRENT_HANDLE, ChildHandle, ChildState
from ._policy import Restart
from ._runner import ChildEnvironment, run_once

if TYPE_CHECKING:
    from ._supervisor import Supervisor


class StartRelay:
    """The `task_status` a child started with `Supervisor.start()` receives.

    It records the value on the handle, stops further retries (they apply only before the child started:
    `retryable`, read by the attempt loop, until a restart begins a new run) and completes the real
    handshake once.
    """

    __slots__ = ("fired", "handle", "retryable", "task_status")

    def __init__(self) -> None:
        self.fired = False
        self.retryable = True
        self.handle: ChildHandle | None = None
        self.task_status: TaskStatus[ChildHandle] | None = None

    def started(self, value: Any = None) -> None:
        handle, task_status = self.handle, self.task_status
        assert handle is not None and task_status is not None, "StartRelay used outside Supervisor.start()"
        handle.started_value = value
        self.retryable = False
        if not self.fired:
            self.fired = True
            task_status.started(handle)


async def run_child(
    sup: Supervisor,
    env: ChildEnvironment,
    handle: ChildHandle,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    is_async: bool,
    restart: Restart,
    checkpoint: Checkpoint | None,
    relay: StartRelay | None = None,
    *,
    task_status: TaskStatus[ChildHandle] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run `handle`'s child, `fn(*args)`, until it is finished; raise only to escalate (or from `start()`).

    The callable and its arguments stay with this task, not with the handle: a finished child's handle keeps
    nothing they refer to alive.
    """
    if relay is not None:
        relay.handle, relay.task_status = handle, task_status
    CURRENT_HANDLE.set(handle)  # this task's own context: nothing to reset
    try:
        # A child cancelled or interrupted while still queued (or queued when the host stopped) never starts.
        if handle._runnable:
            with handle._open_scope() as scope:
                if restart is Restart.TEMPORARY and relay is None:  # most children: one run, no restarts
                    ok, value, reason = await run_once(env, handle, fn, args, is_async)
                    _settle(handle, ok, value, reason)
                else:
                    await _supervise(sup, env, handle, fn, args, is_async, restart, relay)
            if scope.cancelled_caught and handle._runnable:
                # Neither cancelled by its handle nor interrupted: the host is stopping every child.
                handle._finish(ChildState.CANCELLED, "supervisor_cancelled")
        if handle._interrupting:
            await _interrupted(handle, checkpoint)
    except anyio.get_cancelled_exc_class():
        # Cancelled from outside the child's own scope: the supervisor's task group is going down
        # (escalation, or its owner was cancelled). Record why, then let the cancellation propagate.
        if handle._interrupting:
            await _interrupted(handle, checkpoint)
        else:
            handle._finish(ChildState.CANCELLED, "supervisor_cancelled")
        raise
    except BaseException as error:
        # Not an Exception (those are the attempt loop's): KeyboardInterrupt, SystemExit or the like from
        # the child's own code. It takes the task group down; the handle still gets its outcome, so nobody
        # waiting on it (a shutdown, say) waits for nothing.
        if not handle._finished:
            handle.error = error
            handle._finish(ChildState.FAILED, "base_exception")
        raise
    finally:
        sup._child_exited(handle)
    if relay is not None and not relay.fired and handle.error is not None:
        raise handle.error  # failed before task_status.started(): start() raises the child's error


async def _supervise(
    sup: Supervisor,
    env: ChildEnvironment,
    handle: ChildHandle,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    is_async: bool,
    restart: Restart,
    relay: StartRelay | None,
) -> None:
    last_error: BaseException | None = None
    while True:
        ok, value, reason = await run_once(env, handle, fn, args, is_async, relay)
        if handle._finished:
            return  # cancelled in the very tick the run ended: the outcome is discarded
        if ok:
            handle.result = value
        else:
            assert isinstance(value, BaseException)
            last_error = handle.error = value
        if (
            restart is Restart.TEMPORARY
            or (restart is Restart.TRANSIENT and ok)
            or (relay is not None and not relay.fired)  # never restart a child start() is waiting for
            or not sup._accepting()  # no restarts once shutdown began
        ):
            handle._finish(ChildState.SUCCEEDED if ok else ChildState.FAILED, reason)
            return

        restarts = sup._record_restart()
        if restarts > sup.max_restarts:
            # Restarting does not help: give up loudly (event + escalation), never loop silently.
            if env.hooks:
                env.emit(GaveUp, handle, error=last_error, restarts=restarts, reason="restart_limit")
            handle.error = last_error
            handle._finish(ChildState.FAILED, "restart_limit")
            raise RestartLimitExceeded(last_error, child_name=handle.name, restarts=restarts)
        handle.restarts += 1
        if env.hooks:
            env.emit(Restarted, handle, restarts_in_window=restarts, reason="exited" if ok else "error")
        if relay is not None:
            relay.retryable = True
        handle.error = None
        # A child that returns at once would otherwise restart without ever yielding to the loop.
        await anyio.lowlevel.checkpoint()


def _settle(handle: ChildHandle, ok: bool, value: object, reason: str | None) -> None:
    """End a child that is not restarted with the outcome of its one run (`run_once`'s triple)."""
    if handle._finished:
        return  # cancelled in the very tick the run ended: the outcome is discarded
    if ok:
        handle.result = value
        handle._finish(ChildState.SUCCEEDED, reason)
    else:
        assert isinstance(value, BaseException)
        handle.error = value
        handle._finish(ChildState.FAILED, reason)


async def _interrupted(handle: ChildHandle, checkpoint: Checkpoint | None) -> None:
    """Shutdown path: run the checkpoint (shielded, until the shutdown's deadline), then INTERRUPTED."""
    if checkpoint is not None and not handle._finished:
        with anyio.CancelScope(deadline=handle._checkpoint_deadline, shield=True) as scope:
            try:
                handle.checkpoint_result = await checkpoint(handle)
            except Exception as exc:  # a failed checkpoint is reported, never raised
                handle.checkpoint_error = exc
        handle.checkpoint_timed_out = scope.cancelled_caught
    handle._finish(ChildState.INTERRUPTED, "shutdown")
