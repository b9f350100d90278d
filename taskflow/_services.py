"""Long-lived services run by the app (`@task_manager.actor`): started with the lifespan, restarted with
their policy's backoff, given up on when they restart too often, stopped with the lifespan.

Each service runs as the one child of a `supervisors.Supervisor` of its own (restart `PERMANENT` or
`TRANSIENT`), so its restart intensity is its own: past `max_restarts` restarts within `restart_window`
seconds the supervisor raises `RestartLimitExceeded`, and only this service stops. That is the escalation:
it is logged (the `taskflow.actors` logger and every observer), the service's state becomes `gave_up` with
its last error (in `statistics()` and `/tasks/supervision`), and the app's `on_give_up` callback, when one
was given, decides what else happens (whatever it raises stops the runtime, and with it the app's
lifespan). A service never restarts silently in a tight loop.

Before a restart the service waits `policy.backoff_delay(n)` on the runtime's clock, `n` being its failures
in a row; the policy's `timeout` bounds each run. At shutdown services are cancelled first (cancellation is
how a service learns to stop), before the tasks are drained.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio

from supervisors import ChildHandle, Policy, Restart, RestartLimitExceeded, Supervisor

from ._exceptions import ConfigurationError
from ._models import utcnow

if TYPE_CHECKING:
    from supervisors import Clock

_log = logging.getLogger("taskflow.actors")
GiveUpHandler = Callable[["ActorStatistics"], object]
ReportFn = Callable[[str, str, str], None]
"""(actor name, message, level): how a service's escalation is made visible beyond the logger."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActorStatistics:
    """A snapshot of one service: `state` is new, running, restarting, finished, gave_up or stopped."""

    name: str
    state: str
    restart: str
    policy: str
    restarts: int
    failures_in_row: int
    max_restarts: int
    restart_window: float
    last_error: str | None
    last_error_at: datetime | None
    started_at: datetime | None


@dataclass(frozen=True, slots=True)
class ActorDefinition:
    """A declared service: the function, how it restarts, its policy and restart intensity."""

    func: Callable[[], Awaitable[object]]
    name: str
    restart: Restart
    policy: Policy
    max_restarts: int
    restart_window: float
    on_give_up: GiveUpHandler | None


def check_restart(value: object, name: str) -> Restart:
    """`"permanent"` or `"transient"` (or the enum members) as a `Restart`; ConfigurationError otherwise."""
    try:
        restart = value if isinstance(value, Restart) else Restart(value)
    except ValueError:
        restart = None
    if restart not in (Restart.PERMANENT, Restart.TRANSIENT):
        raise ConfigurationError(
            f"@actor({name!r}): restart must be 'permanent' or 'transient', got {value!r}"
        )
    return restart


class ServiceActor:
    """One service while the runtime runs: its supervisor, handle and counters (read by `statistics()`)."""

    def __init__(self, definition: ActorDefinition, clock: Clock | None, report: ReportFn) -> None:
        self.definition = definition
        self._clock = clock
        self._report = report
        self._state = "new"
        self._failures_in_row = 0
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._started_at: datetime | None = None
        self._handle: ChildHandle | None = None
        self._stop = anyio.Event()
        self._done = anyio.Event()

    async def _body(self) -> object:
        """One run of the service (the supervisor restarts it): backoff first when it failed before."""
        definition = self.definition
        if self._failures_in_row:
            self._state = "restarting"
            delay = definition.policy.backoff_delay(self._failures_in_row)
            await (self._clock.sleep(delay) if self._clock is not None else anyio.sleep(delay))
        self._state = "running"
        try:
            if definition.policy.timeout is not None:
                with anyio.fail_after(definition.policy.timeout):
                    result = await definition.func()
            else:
                result = await definition.func()
        except Exception as exc:
            self._failures_in_row += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
            self._last_error_at = utcnow()
            _log.warning(
                "actor %s failed (%s); its supervisor decides whether to restart it",
                definition.name,
                self._last_error,
            )
            raise
        self._failures_in_row = 0
        if definition.restart is Restart.TRANSIENT:
            self._state = "finished"
        return result

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the service until `stop()` (or until it gives up); started with `TaskGroup.start`."""
        definition = self.definition
        supervisor = Supervisor(
            Policy(name=definition.policy.name),
            name=f"actor:{definition.name}",
            max_restarts=definition.max_restarts,
            restart_window=definition.restart_window,
            clock=self._clock,
            shutdown_grace=0.0,  # cancelled at once when the lifespan ends (see the module docstring)
        )
        self._started_at = utcnow()
        try:
            async with supervisor:
                # One attempt per run: the restarts are the service's retries, with the policy's backoff.
                run_policy = dataclasses.replace(definition.policy, retries=0, timeout=None)
                self._handle = supervisor.start_soon(
                    self._body, name=definition.name, restart=definition.restart, policy=run_policy
                )
                task_status.started()
                await self._stop.wait()
            if self._state != "finished":
                self._state = "stopped"
        except RestartLimitExceeded as exc:
            self._state = "gave_up"
            message = (
                f"actor {definition.name} gave up: {exc.restarts} restarts within "
                f"{definition.restart_window:g} s (max_restarts={definition.max_restarts}); "
                f"last error: {self._last_error}"
            )
            _log.error("%s", message)
            self._report(definition.name, message, "error")
            if definition.on_give_up is not None:
                outcome = definition.on_give_up(self.statistics())
                if inspect.isawaitable(outcome):
                    await outcome
        finally:
            self._done.set()

    async def stop(self) -> None:
        """Stop the service (cancelled now; its supervisor interrupts it) and wait until it has."""
        self._stop.set()
        await self._done.wait()

    def statistics(self) -> ActorStatistics:
        handle = self._handle
        return _statistics(
            self.definition,
            state=self._state,
            restarts=handle.restarts if handle is not None else 0,
            failures_in_row=self._failures_in_row,
            last_error=self._last_error,
            last_error_at=self._last_error_at,
            started_at=self._started_at,
        )


class Services:
    """The app's declared services, and the running ones while the lifespan runs."""

    def __init__(self, clock: Clock | None) -> None:
        self._clock = clock
        self._definitions: dict[str, ActorDefinition] = {}
        self._running: dict[str, ServiceActor] = {}
        self._last: dict[str, ActorStatistics] = {}
        self._group: tuple[anyio.abc.TaskGroup, ReportFn] | None = None  # while the services run

    def declare(self, definition: ActorDefinition) -> None:
        """Add a service; names are unique. Declared while the services run, it starts at once; else with
        the next start of the lifespan."""
        if not inspect.iscoroutinefunction(definition.func):
            raise ConfigurationError(
                f"@actor({definition.name!r}) needs an async function, got {definition.func!r}"
            )
        existing = self._definitions.get(definition.name)
        if existing is not None and existing.func is not definition.func:
            raise ConfigurationError(f"a different function is already an actor named {definition.name!r}")
        self._definitions[definition.name] = definition
        if self._group is not None and definition.name not in self._running:
            tg, report = self._group
            actor = ServiceActor(definition, self._clock, report)
            self._running[definition.name] = actor
            tg.start_soon(actor.run)

    async def start(self, tg: anyio.abc.TaskGroup, report: ReportFn) -> None:
        """Start every declared service in `tg` (each has started once this returns)."""
        for definition in list(self._definitions.values()):
            actor = ServiceActor(definition, self._clock, report)
            self._running[definition.name] = actor
            await tg.start(actor.run)
        self._group = (tg, report)

    async def stop(self) -> None:
        """Stop every running service; their last statistics stay readable."""
        self._group = None
        running, self._running = self._running, {}
        for actor in running.values():
            await actor.stop()
            self._last[actor.definition.name] = actor.statistics()

    def statistics(self) -> list[ActorStatistics]:
        """A snapshot of each declared service, by name (the last run's once stopped)."""
        result = []
        for name, definition in sorted(self._definitions.items()):
            actor = self._running.get(name)
            if actor is not None:
                result.append(actor.statistics())
            elif name in self._last:
                result.append(self._last[name])
            else:
                result.append(_statistics(definition, state="new"))
        return result


def _statistics(
    definition: ActorDefinition,
    *,
    state: str,
    restarts: int = 0,
    failures_in_row: int = 0,
    last_error: str | None = None,
    last_error_at: datetime | None = None,
    started_at: datetime | None = None,
) -> ActorStatistics:
    return ActorStatistics(
        name=definition.name,
        state=state,
        restart=definition.restart.value,
        policy=definition.policy.name,
        restarts=restarts,
        failures_in_row=failures_in_row,
        max_restarts=definition.max_restarts,
        restart_window=definition.restart_window,
        last_error=last_error,
        last_error_at=last_error_at,
        started_at=started_at,
    )


def define_actor(
    func: Callable[[], Awaitable[object]],
    *,
    name: str,
    restart: object,
    policy: Policy | None,
    named: Any,
    max_restarts: int | None,
    restart_window: float | None,
    on_give_up: GiveUpHandler | None,
) -> ActorDefinition:
    """The definition `@actor(...)` declares: `named` is the configured `PolicyConfig` when the policy was
    given by name (its restart intensity is the default then); explicit intensity keywords win."""
    from ._config_values import INTENSITY_DEFAULTS, check

    if named is not None:
        policy = named.policy
    elif policy is None:
        policy = Policy(name=name)
    elif not isinstance(policy, Policy):
        raise ConfigurationError(
            f"@actor({name!r}): policy must be a Policy or a policy name, got {policy!r}"
        )
    intensity: dict[str, Any] = {}
    for key, given in (("max_restarts", max_restarts), ("restart_window", restart_window)):
        value = (
            given
            if given is not None
            else (getattr(named, key) if named is not None else INTENSITY_DEFAULTS[key])
        )
        try:
            intensity[key] = check(key, value)
        except ValueError as exc:
            raise ConfigurationError(f"@actor({name!r}): {key} {exc}") from None
    if on_give_up is not None and not callable(on_give_up):
        raise ConfigurationError(f"@actor({name!r}): on_give_up must be callable, got {on_give_up!r}")
    return ActorDefinition(
        func, name, check_restart(restart, name), policy, on_give_up=on_give_up, **intensity
    )
