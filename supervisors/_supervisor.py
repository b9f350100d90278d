"""Supervisor: owns a task group of supervised children, their limits, restarts and graceful shutdown."""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Awaitable, Callable, Hashable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeVarTuple

import anyio

from ._call import Checkpoint, callable_name, is_async_callable, next_child_id
from ._child import StartRelay, run_child
from ._child_tasks import ChildTaskGroup
from ._clock import Clock, SystemClock
from ._events import ChildObserver, Hook, HookFn, normalize_hooks
from ._exceptions import SupervisorStateError
from ._handle import ChildHandle
from ._lane import ThreadLane
from ._live import LiveChildren
from ._policy import Policy, Restart, check_seconds
from ._runner import ChildEnvironment, lane_attempt_ended, lane_attempt_started, lane_attempt_wanted
from ._shutdown import ShutdownReport, shut_down
from ._state import SupervisorState, not_running
from ._statistics import RestartWindow, SupervisorStatistics, snapshot

PosArgsT = TypeVarTuple("PosArgsT")

_DEFAULT_POLICY = Policy()
_RUNNING = SupervisorState.RUNNING


class Supervisor:
    """Runs children in one anyio task group with retries, limits, restarts and a graceful shutdown.

    Use it as an async context manager; `start_soon()` returns a `ChildHandle` at once. `child(policy)`
    gives a child supervisor with its own limits sharing this one's task group.

    Package-internal: a child's task asks its supervisor `_accepting()` and `_record_restart()` and
    reports `_child_exited(handle)`; nothing else reads or writes its state.
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
        self._group: ChildTaskGroup | None = None  # the root's: where every child task of the tree runs
        self._live = LiveChildren()
        self._restarts = RestartWindow(self._clock, self.restart_window)
        self._shutdown_done: anyio.Event | None = None
        # Created here (anyio allows it outside an event loop) so statistics() works before entering.
        self._limiter = anyio.CapacityLimiter(policy.max_concurrency) if policy.max_concurrency else None
        self._thread_limiter = anyio.CapacityLimiter(policy.max_threads) if policy.max_threads else None
        self._lane: ThreadLane | None = None  # the root, and the outermost supervisor with a thread cap
        self._site = self._make_env()

    def _make_env(self) -> ChildEnvironment:
        parent = self._parent._site if self._parent is not None else None
        thread_limiter = self._thread_limiter
        cap: float | None = self.policy.max_threads
        # The outermost supervisor with a thread cap owns a bounded lane; a root without one, the unbounded
        # lane of the sync children no cap applies to (see `_lane`).
        if cap and (parent is None or parent.lane is None or not parent.lane.bounded):
            thread_limiter = None  # the lane's workers are this supervisor's cap: no limiter of its own
        elif parent is None:
            cap = None
        else:
            self._lane = None
            return ChildEnvironment.for_supervisor(
                self.name, self._hooks, self._clock, self._observers, self._limiter, thread_limiter, parent
            )
        lane = self._lane = ThreadLane(
            cap, self._spawn_worker, lane_attempt_started, lane_attempt_ended, lane_attempt_wanted
        )
        return ChildEnvironment.for_supervisor(
            self.name, self._hooks, self._clock, self._observers, self._limiter, thread_limiter, parent, lane
        )

    def _spawn_worker(self, worker: Callable[[], Awaitable[None]]) -> None:
        """Start a thread lane's worker in the root's task group (see `_lane`), in an empty context: it is
        spawned from the attempt that needed it, whose context (its handle, what the caller bound) must not
        live on with the worker, nor with the anyio thread that ran it."""
        group = self._root._group
        assert group is not None
        contextvars.Context().run(group.start_soon, worker, f"{self.name} thread lane")  # type: ignore[arg-type]

    def _close_lanes(self) -> None:
        for node in self._tree():
            if node._lane is not None:
                node._lane.close()

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

    # -- lifecycle -------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._parent is not None:
            raise SupervisorStateError(
                f"Cannot enter child supervisor {self.name!r}: it runs in its root's task group and is "
                "usable as soon as the root is entered"
            )
        if self._state is not SupervisorState.NEW:
            raise SupervisorStateError("Cannot enter a supervisor more than once")
        group = ChildTaskGroup(self._cancel_children)
        await group.open()
        self._group = group
        self._set_state(_RUNNING)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        group = self._group
        assert group is not None
        body_error = exc
        try:
            # Graceful after a clean body; after an error, interrupt at once and re-raise the error.
            await self.shutdown(grace=None if exc is None else 0.0)
        except BaseException as error:  # handed on to the task group, which re-raises it
            exc_type, exc, tb = type(error), error, error.__traceback__
        finally:
            self._close_lanes()  # every child has ended: let the lane workers go
        try:
            return await group.close(exc_type, exc, tb, body_error)
        finally:
            self._set_state(SupervisorState.CLOSED)

    async def shutdown(self, grace: float | None = None) -> ShutdownReport:
        """Stop accepting children, drain them for up to `grace` seconds, then interrupt the rest.

        Idempotent: later (or concurrent) calls return the first call's report. Returns within
        `grace + checkpoint_timeout` plus scheduling noise, even if a sync child ignores cancellation.
        """
        if self._state is SupervisorState.NEW:
            raise not_running(self.name, self._state)
        if self._shutdown_done is not None:  # one shutdown per tree: the others wait for its report
            await self._shutdown_done.wait()
            assert self.shutdown_report is not None
            return self.shutdown_report
        grace = self.shutdown_grace if grace is None else check_seconds("shutdown grace", grace)
        done = anyio.Event()
        nodes = list(self._tree())
        for node in nodes:
            node._shutdown_done = done
            if node._state is _RUNNING:
                node._state = SupervisorState.SHUTTING_DOWN  # refuse new children, stop restarting
        try:
            lives = [node._live for node in nodes]
            return await shut_down(lives, grace, self.checkpoint_timeout, self._publish_report)
        finally:
            self._set_state(SupervisorState.CLOSED)
            done.set()

    def _cancel_children(self) -> None:
        """The host is stopping (its task group is going down): cancel every child of the tree."""
        for node in self._tree():
            node._live.stop_all()
        self._close_lanes()

    # -- package-internal: what a child's task and a shutdown ask of their supervisor -----------------

    def _record_restart(self) -> int:
        """Count a child's restart; return how many fall inside the restart window."""
        return self._restarts.record()

    def _child_exited(self, handle: ChildHandle) -> None:
        """The child's task has ended (whatever its outcome)."""
        self._live.exited(handle)

    def _publish_report(self, report: ShutdownReport) -> None:
        for node in self._tree():
            node.shutdown_report = report

    # -- children --------------------------------------------------------------------------------------

    def _new_handle(
        self, fn: Callable[..., Any], name: str | None, key: Hashable | None, policy: Policy | None
    ) -> ChildHandle:
        name = callable_name(fn) if name is None else name
        handle = ChildHandle(
            next_child_id(), name, key, self.policy if policy is None else policy, self._site
        )
        self._live.add(handle)
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
            raise not_running(self.name, self._state)
        handle = self._new_handle(fn, name, key, policy)
        group = self._root._group
        assert group is not None
        child = (self, self._site, handle, fn, args, is_async_callable(fn), restart, checkpoint)
        group.spawn(run_child, child, handle.name, context)
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
            raise not_running(self.name, self._state)
        if not is_async_callable(fn):
            raise TypeError(f"start() needs an async function accepting task_status=, got {fn!r}")
        relay = StartRelay()
        child_fn = functools.partial(fn, task_status=relay)
        handle = self._new_handle(child_fn, name, key, None)
        group = self._root._group
        assert group is not None
        child = (self, self._site, handle, child_fn, args, True, restart, checkpoint, relay)
        await group.start(run_child, *child, name=handle.name)
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
            raise not_running(self.name, self._state)
        sub = Supervisor(
            policy,
            name=name,
            shutdown_grace=self.shutdown_grace,
            checkpoint_timeout=self.checkpoint_timeout,
            max_restarts=self.max_restarts,
            restart_window=self.restart_window,
            clock=self._clock,
            hooks=self._hooks,
            observers=self._observers,
        )
        sub._parent, sub._root, sub._state = self, self._root, self._state
        sub._site = sub._make_env()  # again, now with the ancestors' limiters
        self._children[name] = sub
        return sub

    def statistics(self) -> SupervisorStatistics:
        """A frozen snapshot; counters include child supervisors (see `children` for the breakdown)."""
        return snapshot(
            self.name,
            self._state.value,
            self.policy.name,
            self._site,
            self._restarts.count(read_clock=self._state is not SupervisorState.CLOSED),
            self._limiter,
            self._thread_limiter,
            self._lane,
            tuple(child.statistics() for child in self._children.values()),
        )
