"""The task runtime without HTTP: lifecycle, retries, idempotency, context, limits, cancel, shutdown."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from typing import Any

import anyio
import pytest

from taskflow import (
    InMemoryLogger,
    InvalidTaskState,
    TaskManager,
    TaskNotFound,
    TaskNotRegistered,
    TaskStatus,
    get_task_context,
    task_log,
)
from tests.helpers import wait_finished, wait_until


async def add(manager: TaskManager, func: Any, *args: Any, **kwargs: Any) -> str:
    """Submit and dispatch a task the way a route plus Starlette's background runner do."""
    task_id, created = manager.launcher.submit(func, args, kwargs)
    if created:
        await manager.launcher.start(task_id)
    return task_id


async def test_success_lifecycle_and_attempt_history() -> None:
    """A task goes PENDING -> RUNNING -> SUCCESS with aware UTC times and one attempt recorded."""
    tm = TaskManager()
    seen: list[TaskStatus] = []

    @tm.task()
    async def job() -> None:
        seen.append(tm.get(get_task_context().task_id).status)  # type: ignore[union-attr]

    async with tm.running():
        task_id, created = tm.launcher.submit(job, (), {})
        assert created and tm.get(task_id).status is TaskStatus.PENDING
        await tm.launcher.start(task_id)
        (record,) = await wait_finished(tm, [task_id])
    assert seen == [TaskStatus.RUNNING]
    assert record.status is TaskStatus.SUCCESS
    assert record.created_at.tzinfo is not None and record.start_time and record.start_time.tzinfo is not None
    assert record.end_time is not None and record.duration is not None and record.duration >= 0
    assert [a.number for a in record.attempts] == [1] and record.attempts[0].error is None


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_retries_then_failure_keeps_error_traceback_and_attempts(kind: str) -> None:
    """retries=2 gives 3 attempts; the record keeps the last error, the full traceback and each attempt."""
    tm = TaskManager()
    calls: list[int] = []

    def body() -> None:
        calls.append(1)
        raise ValueError(f"bad {len(calls)}")

    if kind == "async":

        @tm.task(retries=2, delay=0.001)
        async def job() -> None:
            body()
    else:

        @tm.task(retries=2, delay=0.001)
        def job() -> None:
            body()

    async with tm.running():
        (record,) = await wait_finished(tm, [await add(tm, job)])
    assert len(calls) == 3
    assert record.status is TaskStatus.FAILED and record.retries_used == 2
    assert record.error == "bad 3"
    assert (
        record.stacktrace is not None
        and "ValueError: bad 3" in record.stacktrace
        and "body" in record.stacktrace
    )
    # It starts at the task's own function: the supervisor's and the actor's frames are left out.
    first_frame = record.stacktrace.splitlines()[1]
    assert "in job" in first_frame and "_runner.py" not in record.stacktrace
    assert "_actor.py" not in record.stacktrace
    assert [(a.number, a.error) for a in record.attempts] == [(1, "bad 1"), (2, "bad 2"), (3, "bad 3")]
    assert record.logs.count("--- Retry 1 ---") == 1 and "--- Retry 2 ---" in record.logs


async def test_retry_on_limits_which_errors_retry() -> None:
    """An error outside retry_on fails at once, without retrying."""
    tm = TaskManager()
    calls: list[int] = []

    @tm.task(retries=5, retry_on=ConnectionError)
    async def job() -> None:
        calls.append(1)
        raise KeyError("nope")

    async with tm.running():
        (record,) = await wait_finished(tm, [await add(tm, job)])
    assert calls == [1] and record.status is TaskStatus.FAILED


async def test_per_attempt_timeout_counts_as_a_failed_attempt() -> None:
    """timeout= cuts an attempt that runs too long; the retry then succeeds."""
    tm = TaskManager()
    calls: list[int] = []

    @tm.task(retries=1, timeout=0.05)
    async def job() -> None:
        calls.append(1)
        if len(calls) == 1:
            await anyio.sleep(10)

    async with tm.running():
        (record,) = await wait_finished(tm, [await add(tm, job)])
    assert record.status is TaskStatus.SUCCESS and record.retries_used == 1
    assert record.attempts[0].error is not None


async def test_idempotency_key_returns_the_holder_and_is_released_on_failure() -> None:
    """A key held by a non-failed task returns its id; once that task failed, the key admits a new one."""
    tm = TaskManager()
    gate = anyio.Event()

    @tm.task()
    async def job(fail: bool) -> None:
        await gate.wait()
        if fail:
            raise RuntimeError("x")

    async with tm.running():
        first, created = tm.launcher.submit(job, (True,), {}, idempotency_key="order-42")
        again, created_again = tm.launcher.submit(job, (True,), {}, idempotency_key="order-42")
        assert created and not created_again and again == first
        assert tm.table.total_added == 1
        await tm.launcher.start(first)
        gate.set()
        await wait_finished(tm, [first])
        third, created_third = tm.launcher.submit(job, (False,), {}, idempotency_key="order-42")
        assert created_third and third != first
        await tm.launcher.start(third)
        await wait_finished(tm, [third])
        fourth, _ = tm.launcher.submit(job, (False,), {}, idempotency_key="order-42")
    assert fourth == third  # a succeeded task keeps holding its key


def test_idempotency_holds_under_concurrent_threads() -> None:
    """Sync routes run in threads: 8 threads racing on one key create exactly one task."""
    tm = TaskManager()

    def job() -> None:
        pass

    ids: list[str] = []
    barrier = threading.Barrier(8)

    def submit() -> None:
        barrier.wait()
        ids.append(tm.launcher.submit(job, (), {}, idempotency_key="k")[0])

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1 and tm.table.total_added == 1


async def test_tags_reach_record_context_and_every_event() -> None:
    """Tags are on the record, in get_task_context(), and on every log and lifecycle event."""
    memory = InMemoryLogger()
    tm = TaskManager(loggers=[memory])
    contexts = []

    @tm.task()
    async def job() -> None:
        contexts.append(get_task_context())
        task_log("hello", level="warning", order=7)

    async with tm.running():
        task_id, _ = tm.launcher.submit(job, (), {}, tags={"user": "u1"})
        await tm.launcher.start(task_id)
        (record,) = await wait_finished(tm, [task_id])
        await tm.flush_observers()
    assert record.tags == {"user": "u1"}
    ctx = contexts[0]
    assert (ctx.task_id, ctx.func_name, ctx.attempt, ctx.tags) == (task_id, "job", 0, {"user": "u1"})
    assert [(e.message, e.level, e.extra, e.tags) for e in memory.log_events] == [
        ("hello", "warning", {"order": 7}, {"user": "u1"})
    ]
    assert [e.status for e in memory.lifecycle_events] == [TaskStatus.RUNNING, TaskStatus.SUCCESS]
    assert all(e.tags == {"user": "u1"} for e in memory.lifecycle_events)


async def test_task_log_and_context_from_sync_helpers_and_attempt_numbers() -> None:
    """In a sync task's thread and its helpers, the context tracks the 0-based attempt."""
    tm = TaskManager()
    attempts: list[int] = []

    def helper() -> None:
        ctx = get_task_context()
        assert ctx is not None
        attempts.append(ctx.attempt)
        task_log(f"attempt {ctx.attempt}")

    @tm.task(retries=1)
    def job() -> None:
        helper()
        if len(attempts) == 1:
            raise RuntimeError("first")

    async with tm.running():
        (record,) = await wait_finished(tm, [await add(tm, job)])
    assert attempts == [0, 1]
    assert [line if line.startswith("---") else line.split(" ", 1)[1] for line in record.logs] == [
        "attempt 0",
        "--- Retry 1 ---",
        "attempt 1",
    ]


def test_outside_a_task_task_log_goes_to_stdlib_and_context_is_none(caplog: pytest.LogCaptureFixture) -> None:
    """Outside a task, get_task_context() is None and task_log writes to the 'taskflow.task' logger."""
    assert get_task_context() is None
    with caplog.at_level(logging.DEBUG, logger="taskflow.task"):
        task_log("outside", level="error")
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("taskflow.task", "ERROR", "outside")
    ]


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_context_captured_at_add_task_flows_into_the_task(kind: str) -> None:
    """contextvars set when the task was added are current inside it, for async and sync tasks."""
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")
    tm = TaskManager()
    seen: list[str] = []

    if kind == "async":

        @tm.task()
        async def job() -> None:
            seen.append(request_id.get())
    else:

        @tm.task()
        def job() -> None:
            seen.append(request_id.get())

    async with tm.running():
        token = request_id.set("req-1")
        task_id, _ = tm.launcher.submit(job, (), {})
        request_id.reset(token)
        await tm.launcher.start(task_id)
        await wait_finished(tm, [task_id])
    assert seen == ["req-1"]


async def test_opentelemetry_span_of_the_request_is_current_in_the_task() -> None:
    """Inside a task the current span is its attempt's, linked to the span opened around add_task."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from tests.taskflow.test_tracing import _EXPORTER  # sets the global tracer provider

    tracer = TracerProvider().get_tracer("test")
    tm = TaskManager()
    inside: list[int] = []

    @tm.task()
    async def job() -> None:
        inside.append(trace.get_current_span().get_span_context().span_id)

    async with tm.running():
        with tracer.start_as_current_span("request") as span:
            task_id, _ = tm.launcher.submit(job, (), {})
        await tm.launcher.start(task_id)
        await wait_finished(tm, [task_id])
    (attempt,) = [s for s in _EXPORTER.get_finished_spans() if s.context.span_id in inside]
    assert [link.context.span_id for link in attempt.links] == [span.get_span_context().span_id]


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_concurrency_caps_are_never_exceeded(kind: str) -> None:
    """200 tasks under max_concurrent_tasks=3 / max_sync_threads=2 never run more than the cap at once."""
    tm = TaskManager(max_concurrent_tasks=3, max_sync_threads=2)
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def enter() -> None:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])

    def leave() -> None:
        with lock:
            state["now"] -= 1

    if kind == "async":

        @tm.task()
        async def job() -> None:
            enter()
            await anyio.sleep(0.001)
            leave()
    else:

        @tm.task()
        def job() -> None:
            enter()
            time.sleep(0.001)
            leave()

    cap = 3 if kind == "async" else 2
    async with tm.running():
        ids = [await add(tm, job) for _ in range(200)]
        records = await wait_finished(tm, ids, seconds=30)
    assert all(r.status is TaskStatus.SUCCESS for r in records)
    assert state["peak"] == cap  # reached, and never above


async def test_cancel_pending_never_runs() -> None:
    """A task cancelled while pending (fastapi-taskflow bug: it ran later anyway) never runs."""
    tm = TaskManager()
    ran: list[int] = []

    @tm.task()
    async def job() -> None:
        ran.append(1)

    async with tm.running():
        task_id, _ = tm.launcher.submit(job, (), {})
        assert tm.actions.cancel(task_id).status is TaskStatus.CANCELLED
        await tm.launcher.start(task_id)
        await anyio.wait_all_tasks_blocked()
    assert ran == [] and tm.get(task_id).status is TaskStatus.CANCELLED
    assert tm.statistics().cancelled == 1


async def test_cancel_pending_while_waiting_for_a_slot() -> None:
    """A dispatched task still waiting for a concurrency slot is cancelled and never runs."""
    tm = TaskManager(max_concurrent_tasks=1)
    gate = anyio.Event()
    ran: list[str] = []

    @tm.task()
    async def job(name: str) -> None:
        ran.append(name)
        await gate.wait()

    async with tm.running():
        ids = {await add(tm, job, "a"): "a", await add(tm, job, "b"): "b"}
        # trio starts ready tasks in random order, so either may take the one slot first
        await wait_until(lambda: any(tm.get(i).status is TaskStatus.RUNNING for i in ids))
        (waiting,) = [i for i in ids if tm.get(i).status is TaskStatus.PENDING]
        tm.actions.cancel(waiting)
        gate.set()
        await wait_finished(tm, ids)
    assert ran == [n for i, n in ids.items() if i != waiting]
    assert tm.get(waiting).status is TaskStatus.CANCELLED


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_cancel_running(kind: str) -> None:
    """Cancelling a running task ends it CANCELLED at once (a sync task's thread is abandoned)."""
    tm = TaskManager()
    started = threading.Event()
    release = threading.Event()

    if kind == "async":

        @tm.task()
        async def job() -> None:
            started.set()
            await anyio.sleep(30)
    else:

        @tm.task()
        def job() -> None:
            started.set()
            release.wait(30)

    try:
        async with tm.running():
            task_id = await add(tm, job)
            await wait_until(started.is_set)
            await wait_until(lambda: tm.get(task_id).status is TaskStatus.RUNNING)
            record = tm.actions.cancel(task_id)
            assert record.status is TaskStatus.CANCELLED and record.status_reason == "cancelled"
            with pytest.raises(InvalidTaskState):
                tm.actions.cancel(task_id)
    finally:
        release.set()


async def test_shutdown_drains_then_interrupts_and_never_hangs() -> None:
    """Shutdown lets short tasks finish within grace; long ones end INTERRUPTED; it ends in time."""
    tm = TaskManager(shutdown_grace=0.3, checkpoint_timeout=0.2)
    release = threading.Event()

    @tm.task()
    async def short() -> None:
        await anyio.sleep(0.01)

    @tm.task()
    async def long() -> None:
        await anyio.sleep(60)

    @tm.task()
    def stubborn() -> None:
        release.wait(30)  # ignores cancellation: its thread is abandoned

    try:
        start = time.monotonic()
        async with tm.running():
            ids = [await add(tm, short), await add(tm, long), await add(tm, stubborn)]
            await wait_until(lambda: tm.get(ids[1]).status is TaskStatus.RUNNING)
            await wait_until(lambda: tm.get(ids[2]).status is TaskStatus.RUNNING)
            start = time.monotonic()
        elapsed = time.monotonic() - start
    finally:
        release.set()
    statuses = [tm.get(i).status for i in ids]
    assert statuses == [TaskStatus.SUCCESS, TaskStatus.INTERRUPTED, TaskStatus.INTERRUPTED]
    assert tm.get(ids[1]).status_reason == "shutdown"
    assert elapsed < 0.3 + 0.2 + 2.0


async def test_tasks_accepted_but_not_dispatched_at_shutdown_end_interrupted() -> None:
    """A task whose response never finished (never dispatched) is INTERRUPTED, not left PENDING forever."""
    tm = TaskManager(shutdown_grace=0)

    @tm.task()
    async def job() -> None:
        pass

    async with tm.running():
        task_id, _ = tm.launcher.submit(job, (), {})
    assert tm.get(task_id).status is TaskStatus.INTERRUPTED


async def test_retry_creates_a_new_task_even_with_a_custom_name() -> None:
    """Retry finds the function by its custom name= (fastapi-taskflow answered 409) and runs it again."""
    tm = TaskManager()
    calls: list[int] = []

    @tm.task(name="send-welcome-mail")
    async def job(n: int) -> None:
        calls.append(n)
        if len(calls) == 1:
            raise RuntimeError("smtp down")

    async with tm.running():
        first = await add(tm, job, 5)
        (failed,) = await wait_finished(tm, [first])
        assert failed.func_name == "send-welcome-mail"
        new = tm.actions.resubmit(first)
        await tm.launcher.start(new.task_id)
        (done,) = await wait_finished(tm, [new.task_id])
    assert calls == [5, 5] and done.status is TaskStatus.SUCCESS
    with pytest.raises(InvalidTaskState):
        tm.actions.resubmit(new.task_id)
    with pytest.raises(TaskNotFound):
        tm.actions.resubmit("no-such-id")


async def test_retry_of_an_unknown_function_name_is_not_registered() -> None:
    """A record whose function name is known to no registry cannot be retried (409 in the API)."""
    tm = TaskManager()

    async def job() -> None:
        raise RuntimeError("x")

    async with tm.running():
        (record,) = await wait_finished(tm, [await add(tm, job)])
    record.func_name = "renamed-since"
    with pytest.raises(TaskNotRegistered):
        tm.actions.resubmit(record.task_id)


async def test_undecorated_functions_run_and_can_be_retried() -> None:
    """Functions never decorated run with the default policy and can be retried by name."""
    tm = TaskManager()
    calls: list[int] = []

    def plain(x: int) -> None:
        calls.append(x)
        if len(calls) == 1:
            raise RuntimeError("once")

    async with tm.running():
        first = await add(tm, plain, 1)
        await wait_finished(tm, [first])
        new = tm.actions.resubmit(first)
        await tm.launcher.start(new.task_id)
        await wait_finished(tm, [new.task_id])
    assert calls == [1, 1] and tm.get(new.task_id).status is TaskStatus.SUCCESS


async def test_inline_without_lifespan_has_the_same_retries_and_tracking() -> None:
    """Without running(), dispatch runs the task inline with retries, tracking and observers."""
    memory = InMemoryLogger()
    tm = TaskManager(loggers=[memory])
    calls: list[int] = []

    @tm.task(retries=1)
    async def job() -> None:
        calls.append(1)
        task_log("inline")
        if len(calls) == 1:
            raise RuntimeError("first")

    task_id = await add(tm, job)
    record = tm.get(task_id)
    assert record.status is TaskStatus.SUCCESS and record.retries_used == 1
    assert [e.status for e in memory.lifecycle_events] == [TaskStatus.RUNNING, TaskStatus.SUCCESS]
    assert len(memory.log_events) == 2


async def test_statistics_snapshot_is_frozen_and_counts_every_state() -> None:
    """statistics() returns a frozen snapshot with per-state counts and duration percentiles."""
    tm = TaskManager()

    @tm.task()
    async def ok() -> None:
        pass

    @tm.task()
    async def bad() -> None:
        raise RuntimeError("x")

    async with tm.running():
        ids = [await add(tm, ok), await add(tm, ok), await add(tm, bad)]
        await wait_finished(tm, ids)
        stats = tm.statistics()
        assert stats.supervisor is not None and stats.supervisor.name == "taskflow"
    assert (stats.total, stats.success, stats.failed, stats.cancelled) == (3, 2, 1, 0)
    assert stats.success_rate == pytest.approx(2 / 3)
    assert stats.p50_duration_seconds is not None and stats.p95_duration_seconds is not None
    with pytest.raises(AttributeError):
        stats.total = 0  # type: ignore[misc]


async def test_terminal_records_beyond_the_cap_are_evicted() -> None:
    """Memory stays bounded: only the newest max_terminal_records finished records are kept."""
    tm = TaskManager(max_terminal_records=10)

    @tm.task()
    async def job() -> None:
        pass

    async with tm.running():
        ids = [await add(tm, job) for _ in range(50)]
        await wait_until(lambda: tm.statistics().success == 50)
    assert len(tm.table) == 10 and sum(tm.table.get(i) is not None for i in ids) == 10
    assert tm.statistics().total == 50


def test_bad_settings_are_refused_with_the_setting_named() -> None:
    """Invalid TaskManager and @task options raise errors naming the option."""
    with pytest.raises(ValueError, match="max_concurrent_tasks"):
        TaskManager(max_concurrent_tasks=0)
    with pytest.raises(ValueError, match="shutdown_grace"):
        TaskManager(shutdown_grace=float("nan"))
    tm = TaskManager()
    with pytest.raises(ValueError, match="retries"):
        tm.task(retries=-1)(lambda: None)
    with pytest.raises(ValueError, match="jitter"):
        tm.task(jitter=2)(lambda: None)


def test_decorated_function_stays_directly_callable() -> None:
    """@task returns the function itself."""
    tm = TaskManager()

    def double(x: int) -> int:
        return 2 * x

    assert tm.task(retries=3)(double) is double and double(2) == 4
    assert tm.registry.get_config(double) is not None and tm.registry.get_config(double).retries == 3  # type: ignore[union-attr]


def test_table_pages_walk_newest_first_even_when_threads_insert_out_of_order() -> None:
    """Records inserted a few microseconds out of order still page newest-first without gaps or repeats."""
    from datetime import timedelta

    from taskflow import TaskRecord
    from taskflow._models import utcnow
    from taskflow._table import TaskTable

    table = TaskTable()
    base = utcnow()
    skews = [0, 5, 3, 9, 8, 20, 1, 30, 29, 40]  # microseconds; some arrive after a newer one
    for n, skew in enumerate(skews):
        table.add(
            TaskRecord(f"t{n}", "f", TaskStatus.PENDING, created_at=base + timedelta(microseconds=skew))
        )
    seen: list[str] = []
    cursor = None
    while True:
        page = table.query(limit=3, cursor=cursor)
        seen += [r.task_id for r in page.records]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(f"t{n}" for n in range(10)) and len(seen) == 10
    created = [table.get(i).created_at for i in seen]  # type: ignore[union-attr]
    assert created == sorted(created, reverse=True)


def test_table_restored_old_records_fall_back_to_a_sorted_walk() -> None:
    """An old record added after newer ones (restored history) is still paged in time order."""
    from datetime import timedelta

    from taskflow import TaskRecord
    from taskflow._models import utcnow
    from taskflow._table import TaskTable

    table = TaskTable()
    now = utcnow()
    table.add(TaskRecord("new", "f", TaskStatus.PENDING, created_at=now))
    table.add(TaskRecord("old", "f", TaskStatus.SUCCESS, created_at=now - timedelta(days=1)))
    table.add(TaskRecord("newest", "f", TaskStatus.PENDING, created_at=now + timedelta(seconds=1)))
    assert [r.task_id for r in table.query().records] == ["newest", "new", "old"]
    assert [r.task_id for r in table.query(limit=1, cursor=table.query(limit=2).next_cursor).records] == [
        "old"
    ]


def test_traceback_keeps_frames_and_chained_causes() -> None:
    """The stored traceback has every frame and the chained cause, like traceback.format_exception."""
    from taskflow._traceback import format_traceback

    def inner() -> None:
        raise ValueError("root cause")

    def outer() -> None:
        try:
            inner()
        except ValueError as exc:
            raise RuntimeError("wrapped") from exc

    try:
        outer()
    except RuntimeError as exc:
        text = format_traceback(exc)
    assert "ValueError: root cause" in text and "RuntimeError: wrapped" in text
    assert "direct cause of the following exception" in text
    assert "in inner" in text and "in outer" in text and "^^^" not in text


def test_throughput_counts_completions_in_constant_memory() -> None:
    """Throughput is completions in the last minute, kept as per-second counts (flat memory at any rate)."""
    from taskflow import TaskRecord
    from taskflow._metrics import MetricsRecorder

    recorder = MetricsRecorder()
    for n in range(3000):
        recorder.record_finished(TaskRecord(f"t{n}", "f", TaskStatus.SUCCESS), None)
    stats = recorder.snapshot(0, 0, None)
    assert stats.throughput_per_second == round(3000 / 60, 3) and stats.success == 3000
    assert len(recorder._completions) <= 61


@pytest.mark.parametrize("kind", ["async", "sync", "retried"])
async def test_finished_tasks_leave_no_reference_cycles(kind: str, anyio_backend: str) -> None:
    """Succeeded and failed tasks are freed by reference counting alone: nothing is left for the cyclic
    collector (which would otherwise hold a failed task's frames, and whatever their locals refer to,
    until a full collection)."""
    import gc

    if kind == "sync" and anyio_backend == "trio":
        pytest.skip("trio's to_thread leaves reference cycles of its own (closures in trio._threads)")
    tm = TaskManager()

    @tm.task()
    async def ok(big: list[int]) -> None:
        pass

    @tm.task(retries=2)
    async def failing(big: list[int]) -> None:
        raise ValueError("fails")

    @tm.task()
    def failing_sync(big: list[int]) -> None:
        raise ValueError("fails too")

    func: Any = {"async": failing, "sync": failing_sync, "retried": failing}[kind]
    async with tm.running():
        gc.collect()
        gc.disable()
        try:
            ids = [await add(tm, ok, [1] * 10) for _ in range(5)] + [
                await add(tm, func, [2] * 10) for _ in range(5)
            ]
            await wait_finished(tm, ids)
            await anyio.sleep(0.05)  # the children's tasks end a scheduling round after their records
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            ours = [
                o
                for o in gc.garbage
                if type(o).__name__ in {"ChildHandle", "AsyncActor", "SyncActor", "ValueError", "TaskRecord"}
            ]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    assert ours == []


@pytest.mark.parametrize("lifespan", [True, False])
async def test_starting_a_task_twice_runs_it_once(lifespan: bool) -> None:
    tm = TaskManager()
    runs: list[int] = []

    @tm.task()
    async def job() -> None:
        runs.append(1)
        await anyio.sleep(0.01)

    async def twice() -> str:
        task_id, _ = tm.launcher.submit(job, (), {})
        async with anyio.create_task_group() as tg:
            tg.start_soon(tm.launcher.start, task_id)
            tg.start_soon(tm.launcher.start_after_response, [task_id])
        return task_id

    if lifespan:
        async with tm.running():
            (record,) = await wait_finished(tm, [await twice()])
    else:
        record = tm.get(await twice())
    assert runs == [1] and record.status is TaskStatus.SUCCESS
