"""ChildHandle (one supervised child as seen from outside), its states, and `current_attempt()`."""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from ._policy import Policy

if TYPE_CHECKING:
    from ._runner import ChildEnvironment


class ChildState(enum.Enum):
    """Where a child is in its life. The last four are final."""

    PENDING = "pending"  # spawned, or waiting for a limiter slot
    RUNNING = "running"  # an attempt is running
    RETRYING = "retrying"  # waiting out the backoff delay before the next attempt
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # stopped by a supervisor shutdown

    @property
    def is_finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({ChildState.SUCCEEDED, ChildState.FAILED, ChildState.CANCELLED, ChildState.INTERRUPTED})


@dataclass(frozen=True, slots=True)
class AttemptInfo:
    """The attempt the current code runs in (see `current_attempt()`)."""

    child_id: int
    name: str
    key: Hashable | None
    attempt: int  # 1-based, within the current run
    policy: Policy


# Holds the *handle*, set once per child task rather than once per attempt: `current_attempt()` builds the
# AttemptInfo on demand, which keeps the per-attempt hot path free of allocations.
CURRENT_HANDLE: contextvars.ContextVar[ChildHandle | None] = contextvars.ContextVar(
    "supervisors_current_handle", default=None
)


def current_attempt() -> AttemptInfo | None:
    """The attempt of the supervised child running this code, or None outside supervised children.

    Works in async children, in sync children (anyio copies the context into the worker thread) and in
    anything they call.
    """
    handle = CURRENT_HANDLE.get()
    if handle is None:
        return None
    return AttemptInfo(handle.id, handle.name, handle.key, handle.attempts, handle.policy)


class ChildHandle:
    """One supervised child: returned at once by `start_soon`, updated as the child runs.

    Read its public attributes; do not set them. Methods must be called from the event loop thread.

    The handle owns the child's state (its phase, its final outcome, its cancel scope, its interruption).
    The rest of the package changes that state only through these package-internal methods: `_set_phase`
    (the attempt loop), `_finish` (whoever ends the child: once, then no-op), `_open_scope` / `_release`
    (the child's task, around its run), `_stop` (the host stopping every child) and `_interrupt` (a
    shutdown); it reads it through `state` and the `_finished`, `_runnable`, `_interrupting` and
    `_checkpoint_deadline` properties.
    """

    __slots__ = (
        "_done",
        "_final",
        "_interrupt_deadline",
        "_phase",
        "_scope",
        "_site",
        "attempts",
        "checkpoint_error",
        "checkpoint_result",
        "checkpoint_timed_out",
        "error",
        "id",
        "key",
        "name",
        "policy",
        "reason",
        "restarts",
        "result",
        "started_value",
    )

    def __init__(
        self, child_id: int, name: str, key: Hashable | None, policy: Policy, env: ChildEnvironment
    ) -> None:
        self.id = child_id
        self.name = name
        self.key = key
        self.policy = policy
        # `_phase` follows the attempt loop; `_final` is written once, by `_finish`. Keeping them apart means
        # a runner that resumes after `cancel()` (e.g. a thread result arriving in the same tick) can never
        # overwrite a final state.
        self._phase = ChildState.PENDING
        self._final: ChildState | None = None
        #: Attempts started in the current run (restarts begin a new run).
        self.attempts = 0
        #: How many times the child was restarted (PERMANENT / TRANSIENT children only).
        self.restarts = 0
        self.result: object = None
        #: The last exception, unchanged, when the child FAILED.
        self.error: BaseException | None = None
        #: Why the child ended when it did not simply succeed or fail: "cancelled", "shutdown", ...
        self.reason: str | None = None
        self.started_value: object = None
        self.checkpoint_result: object = None
        self.checkpoint_error: BaseException | None = None
        self.checkpoint_timed_out = False
        self._site = env
        self._scope: anyio.CancelScope | None = None
        self._done: anyio.Event | None = None  # created only when someone waits
        # Set by a shutdown: the child is being interrupted and its checkpoint may run until then.
        self._interrupt_deadline: float | None = None

    @property
    def state(self) -> ChildState:
        """The current state (final once `state.is_finished`)."""
        return self._final or self._phase

    def __repr__(self) -> str:
        return f"<ChildHandle id={self.id} name={self.name!r} state={self.state.value}>"

    def cancel(self, reason: str = "cancelled") -> bool:
        """Cancel the child; False if it already finished (or is being interrupted by a shutdown).

        The handle is CANCELLED at once. A pending child never starts, a running async attempt or a
        backoff sleep is cancelled; a sync attempt's thread is abandoned: it runs on to completion on its
        own and its result is discarded.
        """
        if self._final is not None or self._interrupt_deadline is not None:
            return False
        self._finish(ChildState.CANCELLED, reason)
        if self._scope is not None:
            self._scope.cancel()
        return True

    async def wait(self) -> ChildHandle:
        """Wait until the child is finished and return this handle (never raises the child's error)."""
        if self._final is None:
            if self._done is None:
                self._done = anyio.Event()
            await self._done.wait()
        return self

    # -- package-internal ------------------------------------------------------------------------------

    @property
    def _finished(self) -> bool:
        return self._final is not None

    @property
    def _runnable(self) -> bool:
        """Neither finished nor being interrupted: the child may (still) run."""
        return self._final is None and self._interrupt_deadline is None

    @property
    def _interrupting(self) -> bool:
        return self._interrupt_deadline is not None

    @property
    def _checkpoint_deadline(self) -> float:
        """When the checkpoint of an interrupted child must have returned."""
        assert self._interrupt_deadline is not None, "the child is not being interrupted"
        return self._interrupt_deadline

    def _set_phase(self, phase: ChildState) -> None:
        """The attempt loop's progress: PENDING (waiting for a slot), RUNNING or RETRYING."""
        self._phase = phase

    def _finish(self, state: ChildState, reason: str | None = None) -> bool:
        """Move to the final `state` exactly once (later calls are no-ops): the env counts it and tells the
        hooks and observers, then the waiters wake. Returns False if the child had already finished."""
        if self._final is not None:
            return False
        self._final = state
        self.reason = reason
        self._site.finished(self, state, reason)
        if self._done is not None:
            self._done.set()
        return True

    def _open_scope(self) -> anyio.CancelScope:
        """The cancel scope of the child's run: `cancel()`, `_stop()` and `_interrupt()` cancel it."""
        self._scope = scope = anyio.CancelScope()
        return scope

    def _release(self) -> None:
        """The child's task has ended: drop its cancel scope, which refers to the task (a handle outlives
        its child: callers keep it to read the outcome)."""
        self._scope = None

    def _stop(self) -> None:
        """The host is stopping every child: a running child's scope is cancelled; one whose task has not
        started yet ends CANCELLED now, and will not run (unless a shutdown is interrupting it: its task
        still runs the checkpoint)."""
        if self._scope is not None:
            self._scope.cancel()
        elif self._runnable:
            self._finish(ChildState.CANCELLED, "supervisor_cancelled")

    def _interrupt(self, deadline: float) -> None:
        """A shutdown interrupts the child: its checkpoint may run until `deadline`, then it is INTERRUPTED.
        A child whose task has not started yet sees it when it starts and goes straight to the checkpoint."""
        self._interrupt_deadline = deadline
        if self._scope is not None:
            self._scope.cancel()
