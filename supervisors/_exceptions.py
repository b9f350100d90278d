"""The exception tree of `supervisors`.

::

    Exception
     └── SupervisorError                  every error raised by this package
          ├── SupervisorStateError        (also RuntimeError) a supervisor used in the wrong state
          │    └── SupervisorClosed       start_soon()/start() after shutdown began
          └── RestartLimitExceeded        a child restarted too often: the supervisor escalates

Errors raised by children are never wrapped: a failed child keeps its own exception in `handle.error`.
"""

from __future__ import annotations

from collections.abc import Iterator


class SupervisorError(Exception):
    """Base class of every error raised by `supervisors` itself."""


class SupervisorStateError(SupervisorError, RuntimeError):
    """Raised by `Supervisor` methods called in the wrong lifecycle state.

    For example entering the same supervisor twice, or calling `start_soon()` before `async with`.
    """


class SupervisorClosed(SupervisorStateError):
    """Raised by `Supervisor.start_soon()` / `start()` once `shutdown()` has begun."""


class RestartLimitExceeded(SupervisorError):
    """Raised by a supervisor into its task group when a child restarts too often.

    More than `max_restarts` restarts within `restart_window` seconds means restarting does not help: the
    supervisor gives up, cancels its children and lets its owner decide (`async with` re-raises this
    unwrapped). `__cause__` is the child's last error (None when it kept exiting without one).
    """

    def __init__(self, last_error: BaseException | None, *, child_name: str, restarts: int) -> None:
        super().__init__(
            f"Child {child_name!r} restarted {restarts} times within the restart window; giving up"
            + (f" (last error: {last_error!r})" if last_error is not None else "")
        )
        self.last_error = last_error
        self.child_name = child_name
        self.restarts = restarts
        self.__cause__ = last_error


def leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    """Every non-group exception inside `group`, depth first."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from leaves(exc)
        else:
            yield exc


def find_restart_limit(group: BaseExceptionGroup[BaseException]) -> RestartLimitExceeded | None:
    """The first escalation inside `group` (which `async with Supervisor` re-raises unwrapped)."""
    return next((exc for exc in leaves(group) if isinstance(exc, RestartLimitExceeded)), None)
