"""The lifecycle states of a supervisor, and the error for using one in a state that does not allow it."""

from __future__ import annotations

import enum

from ._exceptions import SupervisorClosed, SupervisorStateError


class SupervisorState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    SHUTTING_DOWN = "shutting_down"
    CLOSED = "closed"


def not_running(name: str, state: SupervisorState) -> SupervisorStateError:
    """The error for starting a child in supervisor `name` while it is in `state` (not RUNNING)."""
    if state is SupervisorState.NEW:
        return SupervisorStateError(f"Supervisor {name!r} is not running: use `async with`")
    return SupervisorClosed(f"Supervisor {name!r} is {state.value}: start_soon after shutdown began")
