"""structlog around tasks: each attempt binds the task's ids into structlog's contextvars, and
`StructlogObserver` logs with what the request and the task bound (structlog.testing.capture_logs)."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from structlog.contextvars import bind_contextvars, clear_contextvars, merge_contextvars
from structlog.testing import capture_logs

import taskflow
from taskflow import TaskManager, task_log
from taskflow.observers import StructlogObserver, drop_keys, redact_keys
from tests.helpers import wait_finished


@pytest.fixture(autouse=True)
def _clean_contextvars() -> Any:
    clear_contextvars()
    yield
    clear_contextvars()


async def run(tm: TaskManager, func: Any, *args: Any, tags: dict[str, str] | None = None) -> str:
    """Submit from a 'request' that bound `request_id`, then run the task to its end."""
    bind_contextvars(request_id="req-1")
    try:
        task_id, _ = tm.launcher.submit(func, args, {}, tags=tags)
    finally:
        clear_contextvars()
    async with tm.running():
        await tm.launcher.start(task_id)
        await wait_finished(tm, [task_id])
        await tm.flush_observers()
    return task_id


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_the_users_own_lines_carry_the_task_and_the_request(kind: str) -> None:
    """A structlog line inside a task has task_id, func_name, attempt, tags and the request's values."""
    tm = TaskManager()
    log = structlog.get_logger("app")

    def body() -> None:
        log.info("inside")

    if kind == "async":

        async def job() -> None:
            body()
    else:

        def job() -> None:  # type: ignore[misc]
            body()

    tm.task(name="job")(job)
    with capture_logs(processors=[merge_contextvars]) as logs:
        task_id = await run(tm, job, tags={"tenant": "a"})
    (line,) = [e for e in logs if e["event"] == "inside"]
    assert line["task_id"] == task_id and line["func_name"] == "job" and line["attempt"] == 0
    assert line["tags"] == {"tenant": "a"} and line["request_id"] == "req-1"


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_each_attempt_binds_its_own_number(kind: str) -> None:
    """A retried task's lines say attempt 0, then 1."""
    tm = TaskManager()
    log = structlog.get_logger("app")

    def body() -> None:
        log.info("try")
        raise ValueError("again")

    if kind == "async":

        async def job() -> None:
            body()
    else:

        def job() -> None:  # type: ignore[misc]
            body()

    tm.task(name="job", retries=1)(job)
    with capture_logs(processors=[merge_contextvars]) as logs:
        await run(tm, job)
    assert [e["attempt"] for e in logs if e["event"] == "try"] == [0, 1]


async def test_binding_is_reset_in_the_tasks_context_after_an_attempt() -> None:
    """After the user's function returns, the task's context no longer holds task_id (reset, not leaked)."""
    tm = TaskManager()
    seen: list[dict[str, Any]] = []

    async def inner() -> None:
        seen.append(structlog.contextvars.get_contextvars())

    @tm.task(name="job")
    async def job() -> None:
        await inner()

    await run(tm, job)
    assert seen and seen[0]["task_id"]
    from taskflow._attempt_context import _Attempt

    class FakeActor:
        attempt = 3
        failed_span = None
        services = type("S", (), {"persistence": None})()
        record = taskflow.TaskRecord("t-9", "f", taskflow.TaskStatus.RUNNING, tags={})

    attempt = _Attempt(FakeActor())  # type: ignore[arg-type]
    attempt.enter()
    assert structlog.contextvars.get_contextvars()["task_id"] == "t-9"
    attempt.exit(None)
    assert "task_id" not in structlog.contextvars.get_contextvars()


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_observer_events_carry_what_the_request_and_the_task_bound(kind: str) -> None:
    """StructlogObserver's task_log and lifecycle events have the request's values; log lines also the
    values the task bound itself, although the observer writes from a worker thread."""
    tm = TaskManager(loggers=[StructlogObserver()])

    def body() -> None:
        bind_contextvars(order_id=42)
        task_log("working", step=1)

    if kind == "async":

        async def job() -> None:
            body()
    else:

        def job() -> None:  # type: ignore[misc]
            body()

    tm.task(name="job")(job)
    with capture_logs() as logs:
        task_id = await run(tm, job)
    working = next(e for e in logs if e["event"] == "working")
    assert working["request_id"] == "req-1" and working["order_id"] == 42 and working["step"] == 1
    assert working["task_id"] == task_id and working["attempt"] == 0
    lifecycle = [e for e in logs if e["event"].startswith("task ")]
    assert [e["event"] for e in lifecycle] == ["task running", "task success"]
    assert all(e["request_id"] == "req-1" and e["task_id"] == task_id for e in lifecycle)


async def test_observer_processors_redact_drop_and_filter() -> None:
    """Processors given to StructlogObserver change taskflow's events only; DropEvent drops one."""

    def no_running(logger: Any, method: str, event_dict: Any) -> Any:
        if event_dict["event"] == "task running":
            raise structlog.DropEvent
        return event_dict

    observer = StructlogObserver(processors=[redact_keys("password"), drop_keys("tags"), no_running])
    tm = TaskManager(loggers=[observer])

    @tm.task(name="job")
    async def job() -> None:
        task_log("login", password="hunter2", user="ann")
        structlog.get_logger("app").info("own", password="visible")

    with capture_logs() as logs:
        await run(tm, job)
    login = next(e for e in logs if e["event"] == "login")
    assert login["password"] == "[redacted]" and login["user"] == "ann" and "tags" not in login
    assert [e["event"] for e in logs if e["event"].startswith("task ")] == ["task success"]
    assert next(e for e in logs if e["event"] == "own")["password"] == "visible"


def test_processor_factories_refuse_bad_keys() -> None:
    """redact_keys and drop_keys need string keys; processors must be callables."""
    with pytest.raises(TypeError):
        redact_keys()
    with pytest.raises(TypeError):
        drop_keys(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callables"):
        StructlogObserver(processors=["nope"])  # type: ignore[list-item]


def test_structlog_observer_is_exported_from_taskflow() -> None:
    """`from taskflow import StructlogObserver` works (it was only in taskflow.observers)."""
    assert taskflow.StructlogObserver is StructlogObserver
