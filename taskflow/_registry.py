"""The task registry: which functions are tasks, under which name, with which supervision policy.

`@task_manager.task(...)` records a `TaskDefinition` and returns the function unchanged (it stays directly
callable). Functions never decorated can still be passed to `add_task`: they get a default definition, kept
too, so that retrying one of their tasks finds them.
"""

from __future__ import annotations

import functools
import inspect
import threading
import types
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from supervisors import Policy

from ._exceptions import ConfigurationError, TaskNotRegistered
from ._models import TaskConfig

_ADHOC_LIMIT = 4096
DEFAULT_POLICY = Policy(name="default")
"""The policy (and so the supervisor) of every function that was never decorated."""

RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


def is_async_callable(func: Callable[..., Any]) -> bool:
    """True for `async def` functions, partials of them, and objects with an `async def __call__`."""
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None))  # noqa: B004


def callable_name(func: Callable[..., Any]) -> str:
    """The default task name: the function's `__name__` (partials: the wrapped function's)."""
    while isinstance(func, functools.partial):
        func = func.func
    return getattr(func, "__name__", None) or type(func).__name__


@dataclass(frozen=True, slots=True)
class TaskDefinition:
    """A task function with its declared options and the policy its supervisor runs it under."""

    func: Callable[..., Any]
    name: str
    config: TaskConfig
    policy: Policy
    is_async: bool
    registered: bool
    #: The policy whose supervisor (and limits) runs the task, when `policy` is a named policy with some
    #: keys given inline: those apply to the task's own attempts, the limits stay the named policy's.
    group: Policy | None = None
    #: "process" for a task whose body runs in a worker process (`@task(executor="process")`), else None:
    #: an `async def` runs on the event loop, a `def` in a worker thread.
    executor: str | None = None
    #: The named queue its tasks wait in (`@task(queue=...)`), and their priority there (higher first).
    queue: str | None = None
    priority: int = 0

    @property
    def supervisor_policy(self) -> Policy:
        """The policy of the supervisor the task is handed to (one per policy name)."""
        return self.policy if self.group is None else self.group


class TaskRegistry:
    """Maps functions and names to their `TaskDefinition`; thread-safe (sync routes run in threads)."""

    def __init__(self) -> None:
        self._by_func: dict[Hashable, TaskDefinition] = {}
        self._by_name: dict[str, TaskDefinition] = {}
        # Functions passed to add_task without a decorator (lambdas, partials made per request) get a
        # definition cached here, bounded so that a new callable per request cannot grow it forever.
        self._adhoc: dict[Hashable, TaskDefinition] = {}
        self._lock = threading.Lock()

    def register(
        self,
        func: Callable[..., Any],
        *,
        retries: int = 0,
        delay: float = 0.0,
        backoff: float = 1.0,
        persist: bool = False,
        name: str | None = None,
        requeue_on_interrupt: bool = False,
        max_delay: float | None = None,
        jitter: float = 0.0,
        timeout: float | None = None,
        retry_on: RetryOn = Exception,
        policy: Policy | None = None,
        group: Policy | None = None,
        executor: str | None = None,
        queue: str | None = None,
        priority: int = 0,
    ) -> TaskDefinition:
        """Declare `func` a task. Bad option values raise ConfigurationError naming the option.

        `group` is the named policy `policy` was made from (with some keys given inline), if any; `queue`
        (checked by the caller) and `priority` say where and in which order its tasks wait.
        """
        if not callable(func):
            raise TypeError(f"@task must decorate a function, got {func!r}")
        task_name = name if name is not None else callable_name(func)
        if not isinstance(task_name, str) or not task_name:
            raise ConfigurationError(f"task name must be a non-empty string, got {name!r}")
        is_async = is_async_callable(func)
        executor = _check_executor(func, task_name, executor, is_async)
        if policy is None:
            try:
                policy = Policy(
                    name=task_name, retries=retries, delay=delay, backoff=backoff,
                    max_delay=max_delay, jitter=jitter, timeout=timeout, retry_on=retry_on,
                )  # fmt: skip
            except ValueError as exc:
                raise ConfigurationError(f"@task({task_name!r}): {exc}") from exc
        config = TaskConfig(
            retries=policy.retries, delay=policy.delay, backoff=policy.backoff, persist=persist,
            name=task_name, requeue_on_interrupt=requeue_on_interrupt,
        )  # fmt: skip
        definition = TaskDefinition(
            func, task_name, config, policy, is_async, True, group, executor, queue, priority
        )
        with self._lock:
            existing = self._by_name.get(task_name)
            if existing is not None and existing.registered and existing.func is not func:
                raise ConfigurationError(f"a different function is already registered as task {task_name!r}")
            self._by_func[_identity(func)] = definition
            self._by_name[task_name] = definition
        return definition

    def definition_for(self, func: Callable[..., Any]) -> TaskDefinition:
        """The definition of `func`, creating a default one for functions never decorated."""
        key = _identity(func)
        definition = self._by_func.get(key) or self._adhoc.get(key)
        if definition is not None and definition.func == func:
            return definition
        name = callable_name(func)
        definition = TaskDefinition(
            func, name, TaskConfig(name=name), DEFAULT_POLICY, is_async_callable(func), False
        )
        with self._lock:
            if len(self._adhoc) >= _ADHOC_LIMIT:
                self._adhoc.clear()
            self._adhoc[key] = definition
            existing = self._by_name.get(name)
            if existing is None or not existing.registered:
                self._by_name[name] = definition
        return definition

    def get(self, name: str) -> TaskDefinition:
        """The definition registered under `name`; TaskNotRegistered when there is none."""
        try:
            return self._by_name[name]
        except KeyError:
            raise TaskNotRegistered(f"no task function is registered as {name!r}") from None

    def find(self, name: str) -> TaskDefinition | None:
        """The definition registered under `name`, or None."""
        return self._by_name.get(name)

    def definitions(self) -> list[TaskDefinition]:
        """Every known definition, decorated ones first, by name."""
        with self._lock:
            items = list(self._by_name.values())
        return sorted(items, key=lambda d: (not d.registered, d.name))

    def get_config(self, func: Callable[..., Any]) -> TaskConfig | None:
        """The declared TaskConfig of `func` (fastapi-taskflow's registry API), None if not decorated."""
        definition = self._by_func.get(_identity(func))
        return definition.config if definition is not None and definition.registered else None

    def get_func(self, name: str) -> Callable[..., Any] | None:
        """The function registered as `name` (fastapi-taskflow's registry API), None if none."""
        definition = self._by_name.get(name)
        return definition.func if definition is not None else None


EXECUTORS = ("async", "thread", "process")


def _check_executor(func: Callable[..., Any], name: str, executor: str | None, is_async: bool) -> str | None:
    """The definition's executor ("process" or None) for `@task(executor=...)`; ConfigurationError for a
    value that does not fit the function (fastapi-taskflow 0.8's checks)."""
    if executor is None:
        return None
    if executor not in EXECUTORS:
        raise ConfigurationError(
            f"@task({name!r}): executor must be one of {EXECUTORS} or None, got {executor!r}"
        )
    if executor == "async" and not is_async:
        raise ConfigurationError(f"@task({name!r}): executor='async' needs an async def function")
    if executor != "async" and is_async:
        raise ConfigurationError(f"@task({name!r}): executor={executor!r} needs a plain def function")
    if executor != "process":
        return None  # what the function's kind already chooses
    qualname = getattr(func, "__qualname__", "")
    if not isinstance(func, types.FunctionType) or "<locals>" in qualname or qualname == "<lambda>":
        raise ConfigurationError(
            f"@task({name!r}): executor='process' needs a module-level function (a worker process imports "
            f"it by name), got {func!r}"
        )
    return "process"


def _identity(func: Callable[..., Any]) -> Hashable:
    # Bound methods are re-created on each attribute access, so key them by (function, instance).
    self_obj = getattr(func, "__self__", None)
    if self_obj is not None and hasattr(func, "__func__"):
        return (id(func.__func__), id(self_obj))
    return id(func)
