"""The one exception tree of taskflow.

    TaskflowError(Exception)
     +-- TaskNotFound(TaskflowError, LookupError)      the runtime, when an id is unknown
     +-- TaskNotRegistered(TaskflowError, LookupError) retry, when no function is registered by that name
     +-- InvalidTaskState(TaskflowError, ValueError)   retry/cancel, when the task's state forbids it
     +-- PayloadError(TaskflowError, ValueError)       the codec and the cipher, when arguments cannot be
                                                        stored, or a stored payload is tampered or unreadable
     +-- ConfigurationError(TaskflowError, ValueError) TaskManager/TaskAdmin, for bad settings
     +-- StoreUnavailable(TaskflowError)               reads of history, when the store does not answer
     +-- TaskArgumentError(TaskflowError, ValueError)  add_task, when an argument of a process task cannot
                                                        be pickled (so cannot reach a worker process)
     +-- ProcessTaskError(TaskflowError, RuntimeError) a process task whose failure cannot come back as
                                                        itself: an exception or return value that does not
                                                        pickle, or a worker process that died
     +-- TaskRejected(TaskflowError)                   add_task, when the task is refused (REJECTED)
          +-- QueueFull(TaskRejected)                  its named queue holds `max_size` waiting tasks
          +-- BacklogFull(TaskRejected)                the process holds `max_pending` pending tasks

Arguments that cannot be encoded raise `TypeError` (the builtin callers expect), naming the argument.
"""

from __future__ import annotations


class TaskflowError(Exception):
    """Base class of every error taskflow raises on purpose."""


class TaskNotFound(TaskflowError, LookupError):
    """Raised by the runtime when no task has the given id."""


class TaskNotRegistered(TaskflowError, LookupError):
    """Raised by retry when no task function is registered under the record's name."""


class ScheduleNotFound(TaskflowError, LookupError):
    """Raised by the schedule actions (pause, resume, run now) when no schedule has the given name."""


class InvalidTaskState(TaskflowError, ValueError):
    """Raised by retry and cancel when the task's current state does not allow the action."""


class PayloadError(TaskflowError, ValueError):
    """Raised when stored arguments cannot be decoded: tampered, encrypted with another key, or corrupt."""


class ConfigurationError(TaskflowError, ValueError):
    """Raised by TaskManager and TaskAdmin for invalid settings, naming the setting."""


class StoreUnavailable(TaskflowError):
    """Raised by lookups and listings that need the store when it fails or does not answer in time (a
    server down or paused); the HTTP API answers 503. The cause is chained."""


class TaskArgumentError(TaskflowError, ValueError):
    """Raised by `add_task` when an argument of an `executor="process"` task cannot be pickled (so cannot
    be sent to a worker process); it names the argument, and no record is created (fastapi-taskflow's
    name, since 0.8)."""


class ProcessTaskError(TaskflowError, RuntimeError):
    """The error of a process task attempt whose own error cannot come back to the parent: an exception (or
    a return value) that cannot be pickled, a `BaseException` such as `SystemExit`, or a worker process that
    died while running it. The message names the original type; the record keeps the worker's traceback."""


DEFAULT_RETRY_AFTER = 1.0
"""Seconds a refused client is told to wait (`TaskRejected.retry_after`, the HTTP `Retry-After`)."""


class TaskRejected(TaskflowError):
    """Raised by `add_task` when a task is refused for lack of room: its record is REJECTED in history and
    its idempotency key released (submitting again with the same key runs). `taskflow.web` answers 429 with
    `Retry-After: retry_after` (rounded up to whole seconds) when a route lets it propagate."""

    def __init__(self, message: str, *, task_id: str, retry_after: float = DEFAULT_RETRY_AFTER) -> None:
        super().__init__(message)
        self.task_id = task_id  # the id of the REJECTED record
        self.retry_after = retry_after


class QueueFull(TaskRejected):
    """The named queue already holds `max_size` waiting tasks (`queue` names it)."""

    def __init__(
        self, message: str, *, task_id: str, queue: str, retry_after: float = DEFAULT_RETRY_AFTER
    ) -> None:
        super().__init__(message, task_id=task_id, retry_after=retry_after)
        self.queue = queue


class BacklogFull(TaskRejected):
    """The process already holds `max_pending` pending tasks (admission control, see docs/queues.md)."""
