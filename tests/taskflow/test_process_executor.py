"""`@task(executor="process")`: the body runs in a worker process of the manager's pool, on both backends.

Every test that starts worker processes is bounded (`fail_after`), and every worker it starts is gone when
it ends (the lifespan's end stops the idle ones; killed ones are reaped before their attempt ends).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from taskflow import (
    ConfigurationError,
    ManagedBackgroundTasks,
    ProcessTaskError,
    TaskArgumentError,
    TaskManager,
    TaskStatus,
)
from taskflow._process_pool import ProcessPool
from tests.helpers import wait_finished, wait_until
from tests.taskflow import process_tasks as pt

LIMIT = 90.0  # seconds any one test may take (worker processes start slowly on a busy machine)


def child_pids() -> set[int]:
    """The pids of this process's children (zombies included: they are children until reaped)."""
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.add(int(entry))
    return found


def gone(pid: int) -> bool:
    """True when no process (zombie included) has this pid any more."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return not Path(f"/proc/{pid}").exists()


async def add(manager: TaskManager, func: Any, *args: Any, **kwargs: Any) -> str:
    """add_task as a route does, then start it (handed over to the lifespan's supervisor, else inline)."""
    tasks = ManagedBackgroundTasks(manager)
    task_id = tasks.add_task(func, *args, **kwargs)
    await manager.launcher.start(task_id)
    return task_id


def logged(manager: TaskManager, task_id: str, prefix: str) -> list[str]:
    """The words after `prefix` in the task's log lines (each line is "<timestamp> <text>")."""
    lines = [line.split(" ", 1)[1] for line in manager.get(task_id).logs if " " in line]
    return [line[len(prefix) :].strip() for line in lines if line.startswith(prefix)]


@pytest.fixture
def no_new_children() -> Iterator[None]:
    """The test leaves no child process behind."""
    before = child_pids()
    yield
    assert child_pids() - before == set()


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPool]:
    """One worker, shared by the pool-level tests of both backends (a worker is tied to no event loop)."""
    shared = ProcessPool(1, None)
    yield shared
    shared.stop_idle()


def _ignore(frame: tuple[Any, ...]) -> None:
    pass


# -- declaring ---------------------------------------------------------------------------------------------


def test_executor_values_that_do_not_fit_the_function_are_configuration_errors() -> None:
    tm = TaskManager()

    async def coro() -> None:
        pass

    def nested() -> None:
        pass

    for bad, func in [("process", coro), ("process", nested), ("process", lambda: None), ("bogus", pt.pid)]:
        with pytest.raises(ConfigurationError, match="executor"):
            tm.task(executor=bad)(func)
    with pytest.raises(ConfigurationError, match="max_process_workers"):
        TaskManager(max_process_workers=0)
    assert TaskManager().max_process_workers == (os.cpu_count() or 1)


def test_an_unpicklable_argument_raises_task_argument_error_in_add_task_and_creates_no_record() -> None:
    tm = TaskManager()
    tm.task(executor="process")(pt.add)
    tasks = ManagedBackgroundTasks(tm)
    with pytest.raises(TaskArgumentError, match="argument 'b' of task 'add'") as caught:
        tasks.add_task(pt.add, 1, threading.Lock())
    assert isinstance(caught.value, ValueError)
    with pytest.raises(TaskArgumentError, match="argument 'b'"):
        tasks.add_task(pt.add, 1, b=lambda: None)
    assert tm.table.records() == []
    assert tasks.tasks == []


# -- the pool: values and errors come back ---------------------------------------------------------------


async def test_the_pool_returns_values_and_raises_the_bodys_errors(pool: ProcessPool) -> None:
    info = ("t1", "add", 0, {}, None)
    before = pool.statistics()  # the pool is shared by both backends' runs
    with anyio.fail_after(LIMIT):
        value = await pool.run(pt.add, (2, 3), {}, info, _ignore)
        assert value["sum"] == 5 and value["pid"] != os.getpid()
        with pytest.raises(ValueError, match="boom") as caught:
            await pool.run(pt.fail, ("boom",), {}, ("t2", "fail", 0, {}, None), _ignore)
        with pytest.raises(ProcessTaskError, match="LockedError: locked") as substitute:
            await pool.run(
                pt.fail_unpicklably, ("locked",), {}, ("t3", "fail_unpicklably", 0, {}, None), _ignore
            )
        with pytest.raises(ProcessTaskError, match="cannot be pickled"):
            await pool.run(pt.return_lock, (), {}, ("t4", "return_lock", 0, {}, None), _ignore)
        with pytest.raises(ProcessTaskError, match="SystemExit: 3"):
            await pool.run(pt.exit_body, (), {}, ("t5", "exit_body", 0, {}, None), _ignore)
        again = await pool.run(pt.pid, (), {}, ("t6", "pid", 0, {}, None), _ignore)
        with pytest.raises(ProcessTaskError, match=r"died \(exit code 7\)"):
            await pool.run(pt.crash, (7,), {}, ("t7", "crash", 0, {}, None), _ignore)
        after_crash = await pool.run(pt.pid, (), {}, ("t8", "pid", 0, {}, None), _ignore)
    trace = caught.value._taskflow_traceback  # type: ignore[attr-defined]
    assert 'process_tasks.py", line' in trace and "in fail" in trace and trace.endswith("ValueError: boom\n")
    assert "_process_worker" not in trace
    assert "raise LockedError(message)" in substitute.value._taskflow_traceback  # type: ignore[attr-defined]
    assert again != value["pid"]  # the worker stopped after the body's SystemExit; a new one ran
    assert after_crash != again  # a new worker replaced the one that died
    stats = pool.statistics()
    assert stats.alive <= 1 and stats.crashed - before.crashed == 1 and stats.killed == before.killed


# -- tasks -----------------------------------------------------------------------------------------------


async def test_a_process_task_runs_in_a_worker_with_its_task_context(no_new_children: None) -> None:
    """The body runs in another process; get_task_context() there is the task's; its lines reach the record;
    the error of a failing one (type, message, the worker's traceback) reaches the record too."""
    tm = TaskManager(max_process_workers=1)
    tm.task(executor="process")(pt.add)
    tm.task(executor="process", retries=1)(pt.fail)
    with anyio.fail_after(LIMIT):
        async with tm.running():
            ok = await add(tm, pt.add, 2, 3, tags={"k": "v"})
            bad = await add(tm, pt.fail, "boom")
            await wait_finished(tm, [ok, bad], seconds=LIMIT)
    record, failed = tm.get(ok), tm.get(bad)
    assert record.status is TaskStatus.SUCCESS
    assert logged(tm, ok, "context") == [f"{ok} add 0 [('k', 'v')]"]
    assert logged(tm, ok, "sum") == ["5"]
    assert failed.status is TaskStatus.FAILED and failed.error == "boom" and failed.retries_used == 1
    assert failed.stacktrace is not None and failed.stacktrace.endswith("ValueError: boom\n")
    assert "in fail" in failed.stacktrace


async def test_task_log_lines_arrive_while_the_body_runs(tmp_path: Path, no_new_children: None) -> None:
    tm = TaskManager(max_process_workers=1)
    tm.task(executor="process")(pt.wait_for)
    flag = tmp_path / "go"
    with anyio.fail_after(LIMIT):
        async with tm.running():
            task_id = await add(tm, pt.wait_for, str(flag))
            await wait_until(lambda: bool(logged(tm, task_id, "started in")), seconds=LIMIT)
            assert tm.get(task_id).status is TaskStatus.RUNNING  # the line came before the end
            flag.touch()
            (record,) = await wait_finished(tm, [task_id], seconds=LIMIT)
    assert record.status is TaskStatus.SUCCESS


async def test_a_timeout_kills_the_worker_and_the_task_retries(tmp_path: Path, no_new_children: None) -> None:
    """The attempt past its timeout ends its worker process (gone when the attempt ends); the retry runs in a
    new worker and succeeds."""
    tm = TaskManager(max_process_workers=1)
    tm.task(executor="process")(pt.pid)
    # Retries beyond one: an attempt that times out while its new worker is still starting leaves that
    # worker ready for the next one.
    tm.task(executor="process", timeout=3, retries=3)(pt.hang_first)
    note = tmp_path / "pid"
    with anyio.fail_after(LIMIT):
        async with tm.running():
            await wait_finished(tm, [await add(tm, pt.pid)], seconds=LIMIT)  # a worker is ready
            task_id = await add(tm, pt.hang_first, str(note))
            (record,) = await wait_finished(tm, [task_id], seconds=LIMIT)
            stats = tm.process_statistics()
    first = int(note.read_text())
    assert record.status is TaskStatus.SUCCESS and record.retries_used >= 1
    assert "timed out" in (record.attempts[0].error or "")
    assert gone(first)
    assert stats.killed >= 1
    assert all(int(p) != first for p in logged(tm, task_id, f"attempt {record.retries_used} in"))


async def test_cancelling_a_running_process_task_kills_its_worker(
    tmp_path: Path, no_new_children: None
) -> None:
    tm = TaskManager(max_process_workers=1)
    tm.task(executor="process")(pt.hang_first)
    note = tmp_path / "pid"
    with anyio.fail_after(LIMIT):
        async with tm.running():
            task_id = await add(tm, pt.hang_first, str(note))
            await wait_until(note.exists, seconds=LIMIT)
            tm.cancel(task_id)
            (record,) = await wait_finished(tm, [task_id], seconds=LIMIT)
            await wait_until(lambda: tm.process_statistics().alive == 0, seconds=LIMIT)
            assert gone(int(note.read_text()))
    assert record.status is TaskStatus.CANCELLED
    assert tm.process_statistics().killed == 1


async def test_workers_are_recycled_after_max_tasks_per_worker(no_new_children: None) -> None:
    tm = TaskManager(max_process_workers=1, process_max_tasks_per_worker=2)
    tm.task(executor="process")(pt.pid)
    pids = []
    with anyio.fail_after(LIMIT):
        async with tm.running():
            for _ in range(4):
                task_id = await add(tm, pt.pid)
                await wait_finished(tm, [task_id], seconds=LIMIT)
                pids.extend(logged(tm, task_id, "pid"))
            stats = tm.process_statistics()
    assert pids[0] == pids[1] and pids[2] == pids[3] and pids[0] != pids[2]
    assert stats.started == 2 and stats.recycled == 2


async def test_never_more_than_max_process_workers_workers(no_new_children: None) -> None:
    """Six tasks at once with max_process_workers=2: at most two workers ever exist (started, alive, seen
    as children of this process), and they serve every task."""
    tm = TaskManager(max_process_workers=2)
    tm.task(executor="process")(pt.spin)
    before = child_pids()
    alive: list[int] = []
    with anyio.fail_after(LIMIT):
        async with tm.running():
            ids = [await add(tm, pt.spin, 0.2) for _ in range(6)]
            while not all(tm.get(i).status.is_terminal for i in ids):
                alive.append(len(child_pids() - before))
                alive.append(tm.process_statistics().alive)
                await anyio.sleep(0.05)
            stats = tm.process_statistics()
    assert all(tm.get(i).status is TaskStatus.SUCCESS for i in ids)
    assert max(alive) <= 2
    assert stats.started <= 2
    assert len({p for i in ids for p in logged(tm, i, "pid")}) <= 2


async def test_shutdown_is_bounded_and_leaves_no_child_process(tmp_path: Path, no_new_children: None) -> None:
    """A process task still running at shutdown gets the grace, then its worker is killed and the task is
    INTERRUPTED; no child process of ours remains."""
    tm = TaskManager(max_process_workers=1, shutdown_grace=0.5)
    tm.task(executor="process")(pt.hang_first)
    note = tmp_path / "pid"
    with anyio.fail_after(LIMIT):
        async with tm.running():
            task_id = await add(tm, pt.hang_first, str(note))
            await wait_until(note.exists, seconds=LIMIT)
    record = tm.get(task_id)
    assert record.status is TaskStatus.INTERRUPTED
    assert gone(int(note.read_text()))
    assert tm.process_statistics().alive == 0


async def test_without_a_lifespan_a_process_task_runs_inline(no_new_children: None) -> None:
    tm = TaskManager(max_process_workers=1, encrypt_args_key=_key())
    tm.task(executor="process")(pt.add)
    with anyio.fail_after(LIMIT):
        task_id = await add(tm, pt.add, 20, 22)  # no lifespan: runs here, to its end
        record = tm.get(task_id)
        assert record.status is TaskStatus.SUCCESS
        assert logged(tm, task_id, "sum") == ["42"]
        # Encrypted: the record holds no argument in plain text; the parent decrypted them for the worker.
        assert record.args == () and record.kwargs == {} and record.encrypted_payload is not None
        async with tm.running():  # the lifespan's end stops the idle worker the inline run left
            pass


def _key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


async def test_a_durable_process_task_is_requeued_at_shutdown_and_resumes_from_its_checkpoint(
    tmp_path: Path, no_new_children: None
) -> None:
    """A checkpoint saved in the worker reaches the record; cut by shutdown, the requeue_on_interrupt task is
    kept (pending, in the store) and its next run, in a new worker, reads that checkpoint."""
    db, note = tmp_path / "tasks.db", tmp_path / "pid"

    def make() -> TaskManager:
        tm = TaskManager(snapshot_db=str(db), max_process_workers=1, shutdown_grace=0.2)
        tm.task(executor="process", persist=True, requeue_on_interrupt=True)(pt.resume)
        return tm

    first = make()
    with anyio.fail_after(LIMIT):
        async with first.running():
            task_id = await add(first, pt.resume, str(note))
            await wait_until(lambda: first.get(task_id).checkpoint is not None, seconds=LIMIT)
        assert first.get(task_id).status is TaskStatus.PENDING
        assert gone(int(note.read_text()))
        second = make()
        async with second.running():
            (record,) = await wait_finished(second, [task_id], seconds=LIMIT)
    assert record.status is TaskStatus.SUCCESS
    assert logged(second, task_id, "resumed at") == ["0", "1"]  # the first run's line, kept in the record
