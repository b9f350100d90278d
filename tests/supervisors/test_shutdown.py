"""Graceful shutdown: drain within grace, interrupt the rest with checkpoints, bounded for stuck threads."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from supervisors import ChildHandle, ChildState, Restart, Supervisor


async def test_children_finishing_within_grace_are_drained() -> None:
    """Children that finish during the grace period are counted as drained, none interrupted."""
    gate = anyio.Event()
    async with Supervisor(shutdown_grace=30) as sup:
        handles = [sup.start_soon(gate.wait) for _ in range(3)]
        await anyio.wait_all_tasks_blocked()
        async with anyio.create_task_group() as tg:
            tg.start_soon(sup.shutdown)
            await anyio.wait_all_tasks_blocked()
            gate.set()
    report = sup.shutdown_report
    assert report is not None
    assert (report.drained, report.interrupted) == (3, ())
    assert all(h.state is ChildState.SUCCEEDED for h in handles)


async def test_the_rest_is_interrupted_with_checkpoint_results() -> None:
    """Children still running after grace become INTERRUPTED ("shutdown") and report their checkpoint."""

    async def save(handle: ChildHandle) -> str:
        return f"saved {handle.key}"

    async def broken(handle: ChildHandle) -> None:
        raise OSError("disk full")

    async with Supervisor(shutdown_grace=0.01) as sup:
        with_checkpoint = sup.start_soon(anyio.sleep_forever, key=1, checkpoint=save)
        failing = sup.start_soon(anyio.sleep_forever, key=2, checkpoint=broken)
        plain = sup.start_soon(anyio.sleep_forever, key=3)
        await anyio.wait_all_tasks_blocked()
    report = sup.shutdown_report
    assert report is not None
    assert report.drained == 0
    by_key = {c.key: c for c in report.interrupted}
    assert by_key[1].checkpoint_result == "saved 1"
    assert isinstance(by_key[2].checkpoint_error, OSError)
    assert by_key[3].checkpoint_result is None
    assert by_key[3].checkpoint_error is None
    assert not any(c.checkpoint_timed_out for c in report.interrupted)
    for handle in (with_checkpoint, failing, plain):
        assert (handle.state, handle.reason) == (ChildState.INTERRUPTED, "shutdown")
    assert with_checkpoint.checkpoint_result == "saved 1"
    assert sup.statistics().interrupted == 3


async def test_a_hanging_checkpoint_is_cut_at_checkpoint_timeout() -> None:
    """A checkpoint that never returns is cut at checkpoint_timeout and reported as timed out."""

    async def hangs(handle: ChildHandle) -> None:
        await anyio.sleep_forever()

    async with Supervisor(shutdown_grace=0, checkpoint_timeout=0.05) as sup:
        handle = sup.start_soon(anyio.sleep_forever, checkpoint=hangs)
        await anyio.wait_all_tasks_blocked()
        with anyio.fail_after(5):
            report = await sup.shutdown()
    assert [c.checkpoint_timed_out for c in report.interrupted] == [True]
    assert handle.checkpoint_timed_out


@pytest.mark.parametrize("blocker", ["sleep", "event"])
async def test_shutdown_with_a_sync_child_ignoring_cancellation_is_bounded(blocker: str) -> None:
    """A thread blocked in time.sleep / on a threading.Event cannot hold shutdown past its deadline."""
    release = threading.Event()
    started = threading.Event()

    def stuck() -> None:
        started.set()
        if blocker == "sleep":
            time.sleep(1.5)
        else:
            release.wait()

    grace, checkpoint_timeout = 0.1, 0.1

    async def checkpoint(handle: ChildHandle) -> str:
        return "noted"

    try:
        begin = time.monotonic()
        async with Supervisor(shutdown_grace=grace, checkpoint_timeout=checkpoint_timeout) as sup:
            handle = sup.start_soon(stuck, checkpoint=checkpoint)
            with anyio.fail_after(5):
                while not started.is_set():  # a real thread: poll with a deadline
                    await anyio.sleep(0.001)
            begin = time.monotonic()
        elapsed = time.monotonic() - begin
        assert elapsed < grace + checkpoint_timeout + 2.0
        assert (handle.state, handle.checkpoint_result) == (ChildState.INTERRUPTED, "noted")
    finally:
        release.set()


async def test_children_never_started_are_interrupted_too() -> None:
    """Children still queued when shutdown interrupts are INTERRUPTED without running."""
    ran = []

    async def child() -> None:
        ran.append(1)

    async with Supervisor(shutdown_grace=0) as sup:
        handle = sup.start_soon(child)
        await sup.shutdown()
    assert ran == []
    assert handle.state is ChildState.INTERRUPTED


async def test_permanent_children_are_not_restarted_during_shutdown() -> None:
    """A permanent child that ends during the grace period stays ended."""
    runs = 0
    stop = anyio.Event()

    async def actor() -> None:
        nonlocal runs
        runs += 1
        await stop.wait()

    async with Supervisor(shutdown_grace=30) as sup:
        handle = sup.start_soon(actor, restart=Restart.PERMANENT)
        await anyio.wait_all_tasks_blocked()
        async with anyio.create_task_group() as tg:
            tg.start_soon(sup.shutdown)
            await anyio.wait_all_tasks_blocked()
            stop.set()
    assert (runs, handle.state) == (1, ChildState.SUCCEEDED)


async def test_shutdown_is_idempotent_and_concurrent_calls_share_the_report() -> None:
    """shutdown() twice (or concurrently) returns the same report."""
    reports = []

    async def shut(sup: Supervisor) -> None:
        reports.append(await sup.shutdown(grace=0))

    async with Supervisor() as sup:
        sup.start_soon(anyio.sleep_forever)
        await anyio.wait_all_tasks_blocked()
        async with anyio.create_task_group() as tg:
            tg.start_soon(shut, sup)
            tg.start_soon(shut, sup)
        reports.append(await sup.shutdown())
    assert reports[0] is reports[1] is reports[2] is sup.shutdown_report


async def test_root_shutdown_shuts_child_supervisors_down() -> None:
    """Shutting down the root interrupts children of its child supervisors too."""
    from supervisors import Policy, SupervisorClosed

    async with Supervisor(shutdown_grace=0) as root:
        sub = root.child(Policy(name="sub"))
        handle = sub.start_soon(anyio.sleep_forever)
        await anyio.wait_all_tasks_blocked()
        report = await root.shutdown()
        with pytest.raises(SupervisorClosed):
            sub.start_soon(anyio.sleep_forever)
    assert [c.child_id for c in report.interrupted] == [handle.id]
    assert sub.shutdown_report is report
