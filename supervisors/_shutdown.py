"""Graceful shutdown of a supervisor tree: drain for `grace`, then interrupt the rest (each child runs its
checkpoint, shielded, until a shared deadline) and report what happened."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from ._handle import ChildHandle, ChildState
from ._policy import check_seconds

if TYPE_CHECKING:
    from ._supervisor import Supervisor

# How long past the checkpoint deadline we wait for interrupted children to record their outcome (one
# scheduling round is enough; this only absorbs a loaded machine) before reporting them ourselves.
_FINALIZE_SLACK = 0.1


@dataclass(frozen=True, slots=True)
class InterruptedChild:
    """A child the shutdown had to interrupt, with the outcome of its checkpoint."""

    child_id: int
    name: str
    key: Hashable | None
    attempts: int
    checkpoint_result: object
    checkpoint_error: BaseException | None
    checkpoint_timed_out: bool


@dataclass(frozen=True, slots=True)
class ShutdownReport:
    """What `Supervisor.shutdown()` did: `drained` children finished within the grace period."""

    grace: float
    elapsed: float
    drained: int
    interrupted: tuple[InterruptedChild, ...]


async def shut_down_tree(sup: Supervisor, grace: float | None) -> ShutdownReport:
    """`Supervisor.shutdown()`: once per tree; concurrent and later calls get the first call's report."""
    from ._supervisor import SupervisorState  # import cycle: the supervisor module imports this one

    if sup._shutdown_done is not None:
        await sup._shutdown_done.wait()
        assert sup.shutdown_report is not None
        return sup.shutdown_report
    grace = sup.shutdown_grace if grace is None else check_seconds("shutdown grace", grace)
    done = anyio.Event()
    nodes = list(sup._tree())
    for node in nodes:
        node._shutdown_done = done
        if node._state is SupervisorState.RUNNING:
            node._state = SupervisorState.SHUTTING_DOWN  # refuse new children, stop restarting
    try:
        return await _shut_down(nodes, grace, sup.checkpoint_timeout)
    finally:
        for node in nodes:
            node._state = SupervisorState.CLOSED
        done.set()


async def _shut_down(nodes: Sequence[Supervisor], grace: float, checkpoint_timeout: float) -> ShutdownReport:
    """Shut down `nodes` (a supervisor and its descendants, already refusing new children).

    If the caller is cancelled during the grace period, the interruption still happens (shielded, bounded
    by the checkpoint deadline) before the cancellation propagates.
    """
    started = anyio.current_time()
    pending = [h for node in nodes for h in node._live.values() if h._final is None]
    report: ShutdownReport | None = None
    try:
        # grace 0 means no draining at all, not one scheduling round in which queued children could start.
        with anyio.move_on_after(grace):
            for node in nodes if grace > 0 else ():
                while node._live:
                    node._idle = anyio.Event()
                    await node._idle.wait()
    finally:
        drained = sum(h._final is not None for h in pending)
        with anyio.CancelScope(shield=True):  # bounded: _interrupt returns by the deadline + slack
            interrupted = await _interrupt(nodes, checkpoint_timeout)
        report = ShutdownReport(grace, anyio.current_time() - started, drained, interrupted)
        for node in nodes:
            node.shutdown_report = report
    return report


async def _interrupt(nodes: Sequence[Supervisor], checkpoint_timeout: float) -> tuple[InterruptedChild, ...]:
    deadline = anyio.current_time() + checkpoint_timeout
    stragglers = [h for node in nodes for h in node._live.values() if h._final is None]
    for handle in stragglers:
        handle._interrupting = True
        handle._checkpoint_deadline = deadline  # one deadline for all checkpoints: they run concurrently
        if handle._scope is not None:
            handle._scope.cancel()
        # else: its task has not started yet; it will see _interrupting and go straight to the checkpoint
    with anyio.move_on_after(deadline + _FINALIZE_SLACK - anyio.current_time()):
        for handle in stragglers:
            await handle.wait()
    for handle in stragglers:
        if handle._final is None:
            # Stuck past the deadline (code shielding itself without a deadline): report it rather than
            # wait; its task is left to the task group.
            handle.checkpoint_timed_out = True
            handle._site.finish(handle, ChildState.INTERRUPTED, "shutdown")
    return tuple(_describe(h) for h in stragglers if h._final is ChildState.INTERRUPTED)


def _describe(handle: ChildHandle) -> InterruptedChild:
    return InterruptedChild(
        child_id=handle.id,
        name=handle.name,
        key=handle.key,
        attempts=handle.attempts,
        checkpoint_result=handle.checkpoint_result,
        checkpoint_error=handle.checkpoint_error,
        checkpoint_timed_out=handle.checkpoint_timed_out,
    )
