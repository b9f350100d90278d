"""Graceful shutdown of a supervisor tree: drain for `grace`, then interrupt the rest (each child runs its
checkpoint, shielded, until a shared deadline) and report what happened. The supervisors themselves change
state (refuse children, close) in `Supervisor.shutdown()`; this module only drains and interrupts."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from ._handle import ChildHandle, ChildState

if TYPE_CHECKING:
    from ._live import LiveChildren

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


async def shut_down(
    lives: Sequence[LiveChildren],
    grace: float,
    checkpoint_timeout: float,
    publish: Callable[[ShutdownReport], None],
) -> ShutdownReport:
    """Shut down the children of a supervisor and its descendants (`lives`, one per supervisor, each
    already refusing new children): drain for
    `grace`, interrupt the rest, hand the report to `publish` and return it.

    If the caller is cancelled during the grace period, the interruption still happens (shielded, bounded
    by the checkpoint deadline) and the report is still published before the cancellation propagates.
    """
    started = anyio.current_time()
    pending = [h for live in lives for h in live.unfinished()]
    report: ShutdownReport | None = None
    try:
        # grace 0 means no draining at all, not one scheduling round in which queued children could start.
        with anyio.move_on_after(grace):
            for live in lives if grace > 0 else ():
                await live.wait_idle()
    finally:
        drained = sum(h._finished for h in pending)
        with anyio.CancelScope(shield=True):  # bounded: _interrupt returns by the deadline + slack
            interrupted = await _interrupt(lives, checkpoint_timeout)
        report = ShutdownReport(grace, anyio.current_time() - started, drained, interrupted)
        publish(report)
    return report


async def _interrupt(
    lives: Sequence[LiveChildren], checkpoint_timeout: float
) -> tuple[InterruptedChild, ...]:
    deadline = anyio.current_time() + checkpoint_timeout
    stragglers = [h for live in lives for h in live.unfinished()]
    for handle in stragglers:
        handle._interrupt(deadline)  # one deadline for all checkpoints: they run concurrently
    with anyio.move_on_after(deadline + _FINALIZE_SLACK - anyio.current_time()):
        for handle in stragglers:
            await handle.wait()
    for handle in stragglers:
        if not handle._finished:
            # Stuck past the deadline (code shielding itself without a deadline): report it rather than
            # wait; its task is left to the task group.
            handle.checkpoint_timed_out = True
            handle._finish(ChildState.INTERRUPTED, "shutdown")
    return tuple(_describe(h) for h in stragglers if h.state is ChildState.INTERRUPTED)


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
