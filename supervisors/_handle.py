"""ChildHandle (one supervised child as seen from outside), its states, and `current_attempt()`."""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from ._policy import Policy, Restart

if TYPE_CHECKING:
    from ._runner import Site


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
_current_handle: contextvars.ContextVar[ChildHandle | None] = contextvars.ContextVar(
    "supervisors_current_handle", default=None
)


def current_attempt() -> AttemptInfo | None:
    """The attempt of the supervised child running this code, or None outside supervised children.

    Works in async children, in sync children (anyio copies the context into the worker thread) and in
    anything they call.
    """
    handle = _current_handle.get()
    if handle is None:
        return None
    return AttemptInfo(handle.id, handle.name, handle.key, handle.attempts, handle.policy)


def _released(*args: object) -> None:
    raise RuntimeError("this child has ended: its callable was released")


class ChildHandle:
    """One supervised child: returned at once by `start_soon`, updated as the child runs.

    Read its public attributes; do not set them. Methods must be called from the event loop thread.
    """

    __slots__ = (
        "_args",
        "_checkpoint",
        "_checkpoint_deadline",
        "_done",
        "_final",
        "_fn",
        "_interrupting",
        "_is_async",
        "_phase",
        "_restart",
        "_retryable",
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
        self,
        child_id: int,
        name: str,
        key: Hashable | None,
        policy: Policy,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        is_async: bool,
        site: Site,
        restart: Restart = Restart.TEMPORARY,
        checkpoint: Callable[[ChildHandle], Awaitable[object]] | None = None,
    ) -> None:
        self.id = child_id
        self.name = name
        self.key = key
        self.policy = policy
        # The runner writes `_phase`; only `Site.finish` writes `_final`, once. Keeping them apart means a
        # runner that resumes after `cancel()` (e.g. a thread result arriving in the same tick) can never
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
        self._fn = fn
        self._args = args
        self._is_async = is_async
        self._site = site
        self._restart = restart
        self._checkpoint = checkpoint
        self._scope: anyio.CancelScope | None = None
        self._done: anyio.Event | None = None  # created only when someone waits
        self._interrupting = False
        self._checkpoint_deadline = 0.0
        self._retryable = True

    def _release(self) -> None:
        """The child's task has ended: drop what only it needed (the callable, its arguments, its scope).

        A handle outlives its child (callers keep it to read the outcome), and the callable often refers
        back to whoever holds the handle: without this, each finished child would stay alive as a
        reference cycle until a full garbage collection.
        """
        self._fn = _released
        self._args = ()
        self._scope = None

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
        if self._final is not None or self._interrupting:
            return False
        self._site.finish(self, ChildState.CANCELLED, reason)
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
