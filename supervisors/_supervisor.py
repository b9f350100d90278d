"""Supervisor: owns a task group of supervised children, their limits, restarts and graceful shutdown."""

from __future__ import annotations

import contextvars
import enum
import functools
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeVarTuple

import anyio
from anyio.abc import TaskGroup

from ._child import StartRelay, run_child
from ._clock import Clock, SystemClock
from ._events import ChildObserver, Hook, HookFn, normalize_hooks
from ._exceptions import SupervisorClosed, SupervisorStateError, find_restart_limit, leaves
from ._handle import ChildHandle
from ._child_tasks import ChildTasks, make_child_tasks
from ._policy import Policy, Restart, check_seconds
from ._runner import Site, callable_name, is_async_callable, next_child_id
from ._shutdown import ShutdownReport, shut_down_tree
from ._statistics import SupervisorStatistics, snapshot

PosArgsT = TypeVarTuple("PosArgsT")
Checkpoint = Callable[[ChildHandle], Awaitable[object]]

_DEFAULT_POLICY = Policy()


class SupervisorState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    SHUTTING_DOWN = "shutting_down"
    CLOSED = "closed"


_RUNNING = SupervisorState.RUNNING


class Supervisor:
    """Runs children in one anyio task group with retries, limits, restarts and a graceful shutdown.

    Use it as an async context manager; `start_soon()` returns a `ChildHandle` at once. `child(policy)`
    gives a child supervisor with its own limits sharing this one's task group.
    """

    def __init__(
        self,
        policy: Policy = _DEFAULT_POLICY,
        *,
        name: str = "root",
        hooks: Sequence[Hook] = (),
        observers: Sequence[ChildObserver] = (),
        shutdown_grace: float = 10.0,
        checkpoint_timeout: float = 5.0,
        max_restarts: int = 3,
        restart_window: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(policy, Policy):
            raise TypeError(f"Supervisor policy must be a Policy, got {policy!r}")
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"Supervisor max_restarts must be an int >= 0, got {max_restarts!r}")
        self.policy = policy
        self.name = name
        self.shutdown_grace = check_seconds("shutdown_grace", shutdown_grace)
        self.checkpoint_timeout = check_seconds("checkpoint_timeout", checkpoint_timeout)
        self.max_restarts = max_restarts
        self.restart_window = check_seconds("restart_window", restart_window, positive=True)
        self.shutdown_report: ShutdownReport | None = None
        self._hooks: tuple[HookFn, ...] = normalize_hooks(hooks)
        self._observers: tuple[ChildObserver, ...] = tuple(observers)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._state = SupervisorState.NEW
        self._parent: Supervisor | None = None
        self._root: Supervisor = self
        self._children: dict[str, Supervisor] = {}
        self._tg: TaskGroup | None = None
        self._host: ChildTasks | None = None  # the root's: where every child task of the tree runs
        self._cancelling = False  # the root's: set when its host stops every child
        self._live: dict[int, ChildHandle] = {}  # children whose task has not exited yet
        self._idle: anyio.Event | None = None  # set when _live empties, created only by shutdown
        self._restart_times: deque[float] = deque()
        self._shutdown_done: anyio.Event | None = None
        # Created here (anyio allows it outside an event loop) so statistics() works before entering.
        self._limiter = anyio.CapacityLimiter(policy.max_concurrency) if policy.max_concurrency else None
        self._thread_limiter = anyio.CapacityLimiter(policy.max_threads) if policy.max_threads else None
        self._site = self._make_site()

    def _make_site(self) -> Site:
        chain: list[Supervisor] = []
        node: Supervisor | None = self
        while node is not None:  # innermost first: the one acquisition order every child follows
            chain.append(node)
            node = node._parent
        return Site.for_chain(
            self.name,
            self._hooks,
            self._clock,
            [n._limiter for n in chain if n._limiter is not None],
            [n._thread_limiter for n in chain if n._thread_limiter is not None],
            self._observers,
        )

    def __repr__(self) -> str:
        return f"<Supervisor name={self.name!r} state={self._state.value} policy={self.policy.name!r}>"

    @property
    def state(self) -> SupervisorState:
        return self._state

    def _tree(self) -> Iterator[Supervisor]:
        yield self
        for child in self._children.values():
            yield from child._tree()

    def _set_state(self, state: SupervisorState) -> None:
        for node in self._tree():
            node._state = state

    def _accepting(self) -> bool:
        return self._state is _RUNNING

    def _not_running(self) -> SupervisorStateError:
        if self._state is SupervisorState.NEW:
            return SupervisorStateError(f"Supervisor {self.name!r} is not running: use `async with`")
        return SupervisorClosed(
            f"Supervisor {self.name!r} is {self._state.value}: start_soon after shutdown began"
        )

    # -- lifecycle -------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._parent is not None:
            raise SupervisorStateError(
                f"Cannot enter child supervisor {self.name!r}: it runs in its root's task group and is "
                "usable as soon as the root is entered"
            )
        if self._state is not SupervisorState.NEW:
            raise SupervisorStateError("Cannot enter a supervisor more than once")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        try:
            self._host = await tg.start(make_child_tasks(self._cancel_children).run)
        except BaseException as error:
            await tg.__aexit__(type(error), error, error.__traceback__)
            raise
        self._tg = tg
        self._set_state(_RUNNING)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tg = self._tg
        assert tg is not None
        body_error = exc
        try:
            # Graceful after a clean body; after an error, interrupt at once and re-raise the error.
            await self.shutdown(grace=None if exc is None else 0.0)
        except BaseException as error:  # handed on to the task group, which re-raises it
            exc_type, exc, tb = type(error), error, error.__traceback__
        finally:
            assert self._host is not None
            self._host.close()  # it returns once the remaining child tasks have ended
        try:
            return await tg.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            # An escalation is the supervisor's verdict, not one failure among others: raise it as is.
            limit = find_restart_limit(group)
            if limit is not None:
                raise limit from limit.last_error
            if body_error is not None and all(leaf is body_error for leaf in leaves(group)):
                return False  # only the body's own error: let it propagate unwrapped, as it was raised
            raise
        finally:
            self._set_state(SupervisorState.CLOSED)

    async def shutdown(self, grace: float | None = None) -> ShutdownReport:
        """Stop accepting children, drain them for up to `grace` seconds, then interrupt the rest.

        Idempotent: later (or concurrent) calls return the first call's report. Returns within
        `grace + checkpoint_timeout` plus scheduling noise, even if a sync child ignores cancellation.
        """
        if self._state is SupervisorState.NEW:
            raise self._not_running()
        return await shut_down_tree(self, grace)

    def _cancel_children(self) -> None:
        """The host is stopping (its task group is going down): cancel every child of the tree."""
        self._cancelling = True  # children whose task has not started yet end without starting
        for node in self._tree():
            for handle in list(node._live.values()):
                if handle._scope is not None:
                    handle._scope.cancel()

    def _child_exited(self, handle: ChildHandle) -> None:
        del self._live[handle.id]
        handle._release()
        if not self._live and self._idle is not None:
            self._idle.set()

    # -- children --------------------------------------------------------------------------------------

    def _new_handle(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        name: str | None,
        key: Hashable | None,
        policy: Policy | None,
        restart: Restart,
        checkpoint: Checkpoint | None,
        is_async: bool,
    ) -> ChildHandle:
        handle = ChildHandle(
            next_child_id(),
            callable_name(fn) if name is None else name,
            key,
            self.policy if policy is None else policy,
            fn,
            args,
            is_async,
            self._site,
            restart,
            checkpoint,
        )
        self._live[handle.id] = handle
        self._site.started += 1
        return handle

    def start_soon(
        self,
        fn: Callable[[*PosArgsT], object],
        /,
        *args: *PosArgsT,
        name: str | None = None,
        key: Hashable | None = None,
        restart: Restart = Restart.TEMPORARY,
        checkpoint: Checkpoint | None = None,
        context: contextvars.Context | None = None,
        policy: Policy | None = None,
    ) -> ChildHandle:
        """Start supervising `fn(*args)` (async, or sync in a worker thread) and return its handle at once.

        `policy` overrides the retry/timeout part of this supervisor's policy for this child (limits stay
        the supervisor's). `context` runs the child in a copy of that `contextvars.Context`.
        """
        if self._state is not _RUNNING:
            raise self._not_running()
        handle = self._new_handle(fn, args, name, key, policy, restart, checkpoint, is_async_callable(fn))
        host = self._root._host
        assert host is not None
        host.spawn(run_child, (self, handle), handle.name, context)
        return handle

    async def start(
        self,
        fn: Callable[..., Awaitable[object]],
        /,
        *args: Any,
        name: str | None = None,
        key: Hashable | None = None,
        restart: Restart = Restart.TEMPORARY,
        checkpoint: Checkpoint | None = None,
    ) -> ChildHandle:
        """Start `fn(*args, task_status=...)` and return once it called `task_status.started(value)`.

        `handle.started_value` holds the value. Retries apply only before the child started; if it fails
        before that, its error is raised here.
        """
        if self._state is not _RUNNING:
            raise self._not_running()
        if not is_async_callable(fn):
            raise TypeError(f"start() needs an async function accepting task_status=, got {fn!r}")
        relay = StartRelay()
        child_fn = functools.partial(fn, task_status=relay)
        handle = self._new_handle(child_fn, args, name, key, None, restart, checkpoint, True)
        relay.handle = handle
        tg = self._root._tg
        assert tg is not None
        await tg.start(run_child, self, handle, relay, name=handle.name)
        return handle

    def child(self, policy: Policy, *, name: str | None = None) -> Supervisor:
        """The child supervisor for `policy` (cached by name, which defaults to `policy.name`).

        It shares this supervisor's task group, hooks, observers and clock, has its own limiters and also
        honours every ancestor's, so a root cap is global while a child cap keeps one policy from taking all
        slots.
        """
        name = policy.name if name is None else name
        existing = self._children.get(name)
        if existing is not None:
            if existing.policy != policy:
                raise ValueError(f"Child supervisor {name!r} already exists with a different policy")
            return existing
        if self._state in (SupervisorState.SHUTTING_DOWN, SupervisorState.CLOSED):
            raise self._not_running()
        sub = Supervisor(
            policy,
            name=name,
            shutdown_grace=self.shutdown_grace,
            checkpoint_timeout=self.checkpoint_timeout,
            max_restarts=self.max_restarts,
            restart_window=self.restart_window,
            clock=self._clock,
        )
        sub._parent, sub._root, sub._hooks, sub._state = self, self._root, self._hooks, self._state
        sub._observers = self._observers
        sub._site = sub._make_site()
        self._children[name] = sub
        return sub

    def statistics(self) -> SupervisorStatistics:
        """A frozen snapshot; counters include child supervisors (see `children` for the breakdown)."""
        return snapshot(self)
