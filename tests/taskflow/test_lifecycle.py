"""The one lifecycle: allowed transitions, one change per state change, the same sinks for every change."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from taskflow import InMemoryLogger, TaskManager, TaskRecord, TaskStatus
from taskflow._lifecycle import ALLOWED_TRANSITIONS, ChangeKind, IllegalTransition, Lifecycle, TaskChange
from taskflow._sinks import ObserverSink, StoreSink
from taskflow._table import TaskTable
from tests.helpers import wait_finished, wait_until


class Recorder:
    """A sink that keeps every change it is given."""

    def __init__(self) -> None:
        self.changes: list[TaskChange] = []

    def take(self, changes: Sequence[TaskChange]) -> None:
        self.changes.extend(changes)


def lifecycle() -> tuple[Lifecycle, Recorder]:
    recorder = Recorder()
    return Lifecycle(TaskTable(), [recorder]), recorder


def test_every_status_has_an_entry_and_terminal_states_are_final() -> None:
    """The table names every status; terminal ones are final; new records enter PENDING or INTERRUPTED."""
    assert set(ALLOWED_TRANSITIONS) == {None, *TaskStatus}
    for status in TaskStatus:
        assert (ALLOWED_TRANSITIONS[status] == frozenset()) is status.is_terminal
    assert ALLOWED_TRANSITIONS[None] == {TaskStatus.PENDING, TaskStatus.INTERRUPTED}


def test_a_finished_task_cannot_move_again() -> None:
    """Moving a settled record raises the internal error, and neither the table nor the sinks change."""
    lc, recorder = lifecycle()
    record = TaskRecord(task_id="t1", func_name="f", status=TaskStatus.PENDING)
    lc.admit(record)
    lc.move(record, TaskStatus.RUNNING)
    lc.move(record, TaskStatus.SUCCESS)
    with pytest.raises(IllegalTransition, match="success -> running"):
        lc.move(record, TaskStatus.RUNNING)
    with pytest.raises(IllegalTransition):
        lc.requeue(record, "shutdown")
    assert record.status is TaskStatus.SUCCESS and lc.table.counts()[TaskStatus.SUCCESS] == 1
    assert [c.kind for c in recorder.changes] == [ChangeKind.ADDED, ChangeKind.MOVED, ChangeKind.MOVED]


def test_a_record_cannot_enter_the_table_running() -> None:
    """Admitting a record in a status no new record may have raises, and adds nothing."""
    lc, recorder = lifecycle()
    with pytest.raises(IllegalTransition):
        lc.admit(TaskRecord(task_id="t1", func_name="f", status=TaskStatus.RUNNING))
    assert len(lc.table) == 0 and recorder.changes == []


def test_each_change_says_what_moved_from_where() -> None:
    """A change carries its kind, the task id, the previous and new status and the record itself."""
    lc, recorder = lifecycle()
    record = TaskRecord(task_id="t1", func_name="f", status=TaskStatus.PENDING)
    lc.admit(record)
    lc.move(record, TaskStatus.RUNNING)
    lc.update(record)
    lc.requeue(record, "shutdown")
    seen = [(c.kind, c.task_id, c.previous, c.status, c.record is record) for c in recorder.changes]
    assert seen == [
        (ChangeKind.ADDED, "t1", None, TaskStatus.PENDING, True),
        (ChangeKind.MOVED, "t1", TaskStatus.PENDING, TaskStatus.RUNNING, True),
        (ChangeKind.UPDATED, "t1", TaskStatus.RUNNING, TaskStatus.RUNNING, True),
        (ChangeKind.REQUEUED, "t1", TaskStatus.RUNNING, TaskStatus.PENDING, True),
    ]
    assert lc.table.counts()[TaskStatus.PENDING] == 1 and lc.table.counts()[TaskStatus.RUNNING] == 0
    with pytest.raises(AttributeError):
        recorder.changes[0].status = TaskStatus.FAILED  # type: ignore[misc]


async def test_a_listener_sees_every_change_of_a_task_in_order() -> None:
    """A listener sink added to a runtime gets the task's admission, start and end, in order."""
    tm = TaskManager()
    recorder = Recorder()
    tm.listeners.add(recorder)

    @tm.task()
    async def job() -> None:
        pass

    async with tm.running():
        task_id, _ = tm.launcher.submit(job, (), {})
        await tm.launcher.start_after_response([task_id])
        await wait_finished(tm, [task_id])
    statuses = [(c.kind, c.status) for c in recorder.changes if c.task_id == task_id]
    assert statuses == [
        (ChangeKind.ADDED, TaskStatus.PENDING),
        (ChangeKind.MOVED, TaskStatus.RUNNING),
        (ChangeKind.MOVED, TaskStatus.SUCCESS),
    ]


def test_sinks_with_nothing_to_do_are_not_in_the_list() -> None:
    """Without a store or observers, neither sink is built; with them, each is there once."""
    plain = TaskManager()
    assert not any(isinstance(s, StoreSink | ObserverSink) for s in plain.lifecycle.sinks)
    full = TaskManager(snapshot_db=":memory:", loggers=[InMemoryLogger()])
    kinds = [type(s) for s in full.lifecycle.sinks]
    assert kinds.count(StoreSink) == 1 and kinds.count(ObserverSink) == 1


async def test_observers_see_a_task_requeued_at_shutdown(tmp_path: Path) -> None:
    """A running `requeue_on_interrupt` task kept for the next start reaches observers as PENDING."""
    observer = InMemoryLogger()
    tm = TaskManager(snapshot_db=str(tmp_path / "t.db"), shutdown_grace=0, loggers=[observer])
    started = anyio.Event()

    @tm.task(requeue_on_interrupt=True)
    async def long() -> None:
        started.set()
        await anyio.sleep_forever()

    async with tm.running():
        task_id, _ = tm.launcher.submit(long, (), {})
        await tm.launcher.start(task_id)
        await started.wait()
        await wait_until(lambda: tm.get(task_id).status is TaskStatus.RUNNING)
    statuses = [e.status for e in observer.lifecycle_events if e.task_id == task_id]
    assert statuses == [TaskStatus.RUNNING, TaskStatus.PENDING]
    assert tm.get(task_id).status_reason == "requeued: interrupted by shutdown"
