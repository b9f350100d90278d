"""supervisors: a supervision runtime for anyio (asyncio and trio).

Supervisors run children (async functions, or sync ones in worker threads) in a task group with retries
and backoff, per-attempt timeouts, concurrency limits, restarts with a restart intensity, cancellation by
handle, graceful shutdown with checkpoints, lifecycle events and statistics. Depends only on anyio (on
trio, its children are tasks of a trio nursery of its own, through trio's public API).
"""

from ._clock import Clock as Clock
from ._clock import SystemClock as SystemClock
from ._events import AttemptFailed as AttemptFailed
from ._events import AttemptStarted as AttemptStarted
from ._events import Cancelled as Cancelled
from ._events import ChildEvent as ChildEvent
from ._events import ChildObserver as ChildObserver
from ._events import Event as Event
from ._events import Failed as Failed
from ._events import GaveUp as GaveUp
from ._events import Hook as Hook
from ._events import Interrupted as Interrupted
from ._events import Restarted as Restarted
from ._events import RetryScheduled as RetryScheduled
from ._events import Succeeded as Succeeded
from ._events import SupervisorHook as SupervisorHook
from ._exceptions import RestartLimitExceeded as RestartLimitExceeded
from ._exceptions import SupervisorClosed as SupervisorClosed
from ._exceptions import SupervisorError as SupervisorError
from ._exceptions import SupervisorStateError as SupervisorStateError
from ._handle import AttemptInfo as AttemptInfo
from ._handle import ChildHandle as ChildHandle
from ._handle import ChildState as ChildState
from ._handle import current_attempt as current_attempt
from ._inline import run_supervised as run_supervised
from ._policy import Policy as Policy
from ._policy import Restart as Restart
from ._shutdown import InterruptedChild as InterruptedChild
from ._shutdown import ShutdownReport as ShutdownReport
from ._state import SupervisorState as SupervisorState
from ._statistics import LaneStatistics as LaneStatistics
from ._statistics import LimiterStatistics as LimiterStatistics
from ._statistics import SupervisorStatistics as SupervisorStatistics
from ._statistics import limiter_statistics as limiter_statistics
from ._supervisor import Supervisor as Supervisor

__all__ = [
    "AttemptFailed",
    "AttemptInfo",
    "AttemptStarted",
    "Cancelled",
    "ChildEvent",
    "ChildHandle",
    "ChildObserver",
    "ChildState",
    "Clock",
    "Event",
    "Failed",
    "GaveUp",
    "Hook",
    "Interrupted",
    "InterruptedChild",
    "LaneStatistics",
    "LimiterStatistics",
    "Policy",
    "Restart",
    "RestartLimitExceeded",
    "Restarted",
    "RetryScheduled",
    "ShutdownReport",
    "Succeeded",
    "Supervisor",
    "SupervisorClosed",
    "SupervisorError",
    "SupervisorHook",
    "SupervisorState",
    "SupervisorStateError",
    "SupervisorStatistics",
    "SystemClock",
    "current_attempt",
    "limiter_statistics",
    "run_supervised",
]
