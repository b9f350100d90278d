"""Declaring what a runtime runs: task functions (`@task`) and long-lived actors (`@actor`).

The public decorators of `TaskRuntime` hand their keywords here. This is where a named policy from
configuration is resolved against the keywords given, a task's queue is checked against the declared ones,
and the result is registered (`TaskRegistry`) or declared (`Services`): nothing runs until the lifespan.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from supervisors import Policy, Restart

from ._config import UNSET, TaskflowConfig, named_task_policy
from ._exceptions import ConfigurationError
from ._queues import check_priority
from ._registry import callable_name
from ._services import GiveUpHandler, define_actor

if TYPE_CHECKING:
    from ._queues import Queues
    from ._registry import TaskRegistry
    from ._services import Services

F = TypeVar("F", bound=Callable[..., Any])
A = TypeVar("A", bound=Callable[[], Awaitable[Any]])


class Declarations:
    """Makes the `@task` and `@actor` decorators of one runtime."""

    def __init__(
        self, *, config: TaskflowConfig, registry: TaskRegistry, services: Services, queues: Queues | None
    ) -> None:
        self.config = config  # the named policies
        self.registry = registry
        self.services = services
        self.queues = queues  # None when no queue is declared

    def task(
        self,
        inline: dict[str, Any],
        *,
        persist: bool,
        name: str | None,
        requeue_on_interrupt: bool,
        policy: Policy | str | None,
        executor: str | None,
        queue: str | None,
        priority: int,
    ) -> Callable[[F], F]:
        """`@task`'s decorator; `inline` holds the policy keywords as given (`UNSET` when not)."""
        if queue is not None:
            if self.queues is None:
                raise ConfigurationError(f"@task(queue={queue!r}): no queue is declared")
            self.queues.check_name(queue)
        check_priority(priority)
        placing: dict[str, Any] = {"queue": queue, "priority": priority}

        def decorator(func: F) -> F:
            task_name = name if name is not None else callable_name(func)
            if isinstance(policy, str):
                effective, group = named_task_policy(self.config, policy, inline, task_name)
                self.registry.register(
                    func, persist=persist, name=name, requeue_on_interrupt=requeue_on_interrupt,
                    policy=effective, group=group, executor=executor, **placing,
                )  # fmt: skip
                return func
            given: dict[str, Any] = {key: value for key, value in inline.items() if value is not UNSET}
            self.registry.register(
                func, persist=persist, name=name, requeue_on_interrupt=requeue_on_interrupt, policy=policy,
                executor=executor, **given, **placing,
            )  # fmt: skip
            return func

        return decorator

    def actor(
        self,
        *,
        restart: Restart | str,
        policy: Policy | str | None,
        name: str | None,
        max_restarts: int | None,
        restart_window: float | None,
        on_give_up: GiveUpHandler | None,
    ) -> Callable[[A], A]:
        """`@actor`'s decorator: a named policy gives its values, the keywords given override them."""

        def decorator(func: A) -> A:
            actor_name = name if name is not None else callable_name(func)
            named = self.config.policy(policy) if isinstance(policy, str) else None
            self.services.declare(
                define_actor(
                    func, name=actor_name, restart=restart, policy=None if named else policy,  # type: ignore[arg-type]
                    named=named, max_restarts=max_restarts, restart_window=restart_window,
                    on_give_up=on_give_up,
                )
            )  # fmt: skip
            return func

        return decorator
