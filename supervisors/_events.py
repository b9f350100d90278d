"""Lifecycle events of supervised children, the hook protocol, and isolated hook dispatch.

Events are built only when a supervisor has hooks: with none, the attempt loop never allocates them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from ._handle import ChildHandle

logger = logging.getLogger("supervisors")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildEvent:
    """Fields common to every event. `attempt` is the attempt number within the current run."""

    supervisor: str
    child_id: int
    name: str
    key: Hashable | None
    attempt: int
    timestamp: float  # the supervisor clock's now()


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptStarted(ChildEvent):
    """An attempt got its limiter slots and is starting."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptFailed(ChildEvent):
    """An attempt raised (reason "error") or timed out (reason "timeout")."""

    error: BaseException
    will_retry: bool
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryScheduled(ChildEvent):
    """The next attempt will start after `delay` seconds."""

    delay: float
    error: BaseException


@dataclass(frozen=True, slots=True, kw_only=True)
class Succeeded(ChildEvent):
    """The child finished with a result."""

    result: object


@dataclass(frozen=True, slots=True, kw_only=True)
class Failed(ChildEvent):
    """The child finished with `error`, the original last exception.

    `reason` is "error" or "timeout" when attempts ran out, "not_retryable" when the policy does not
    retry the error, "base_exception" when the child raised a `BaseException` that is not a cancellation
    (it also takes the task group down). (A child its supervisor gives up restarting ends FAILED with a
    `GaveUp` event.)
    """

    error: BaseException
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancelled(ChildEvent):
    """The child was cancelled: by `handle.cancel(reason)` or because its supervisor was cancelled."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Interrupted(ChildEvent):
    """A shutdown stopped the child; `checkpoint` is what its checkpoint returned (None without one)."""

    reason: str
    checkpoint: object
    checkpoint_error: BaseException | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Restarted(ChildEvent):
    """A run ended (reason "exited" or "error") and the child starts again."""

    restarts_in_window: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GaveUp(ChildEvent):
    """Too many restarts within the window: the supervisor stops restarting and escalates."""

    error: BaseException | None
    restarts: int
    reason: str


Event: TypeAlias = (
    AttemptStarted
    | AttemptFailed
    | RetryScheduled
    | Succeeded
    | Failed
    | Cancelled
    | Interrupted
    | Restarted
    | GaveUp
)


@runtime_checkable
class SupervisorHook(Protocol):
    """An observer of child events. Called synchronously, in order; it must not block."""

    def on_event(self, event: Event) -> None: ...


Hook: TypeAlias = SupervisorHook | Callable[[Event], None]
HookFn: TypeAlias = Callable[[Event], None]


class ChildObserver(Protocol):
    """A direct observer, for runtimes built on supervisors: called with the child's handle, no event built.

    An event is an object built and handed to every hook; a runtime that follows every child (taskflow
    turns them into task records) gets the same moments through these calls without building one
    (docs/benchmarks.md has what each costs). The handle carries the rest: `handle.attempts`, and once
    finished `handle.state`, `.reason`, `.error` and `.result`. Restarts are not reported here (use
    hooks). Called synchronously, in order, on the event loop; an observer must not block, and one that
    raises is logged and never affects the child.
    """

    def attempt_started(self, handle: ChildHandle) -> None: ...

    def attempt_failed(
        self, handle: ChildHandle, error: BaseException, will_retry: bool, reason: str
    ) -> None: ...

    def retry_scheduled(self, handle: ChildHandle, delay: float, error: BaseException) -> None: ...

    def finished(self, handle: ChildHandle) -> None: ...


def notify(calls: tuple[Callable[..., None], ...], *args: object) -> None:
    """Call each of one kind of observer methods (resolved once, by `ChildEnvironment`); one that raises is
    logged, never affecting the child or the other observers."""
    for call in calls:
        try:
            call(*args)
        except Exception:
            logger.exception("Supervisor observer method %r raised", call)


def normalize_hooks(hooks: Sequence[Hook]) -> tuple[HookFn, ...]:
    """Turn hook objects and plain callables into one tuple of callables (resolved once, not per event)."""
    result: list[HookFn] = []
    for hook in hooks:
        if isinstance(hook, SupervisorHook):
            result.append(hook.on_event)
        elif callable(hook):
            result.append(hook)
        else:
            raise TypeError(f"A hook must have an on_event(event) method or be callable, got {hook!r}")
    return tuple(result)


def dispatch(hooks: tuple[HookFn, ...], event: Event) -> None:
    """Call each hook with `event`; a hook that raises is logged, never affecting the child or other hooks."""
    for hook in hooks:
        try:
            hook(event)
        except Exception:
            logger.exception("Supervisor hook %r raised while handling %s", hook, type(event).__name__)
