"""The thread lane: sync children of a supervisor tree with a thread cap run on at most that many worker
threads, queued until a worker takes them (cap, timeouts, cancellation, context, from_thread); without a
cap, on the root's unbounded lane."""

from __future__ import annotations

import contextvars
import sys
import threading
import time

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import pytest

from supervisors import AttemptStarted, ChildState, Event, Policy, Supervisor

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def _cap_checker(sup_ref: list[Supervisor], cap: int, seen: list[int]) -> object:
    """A hook reading `running` each time an attempt starts (on the loop, right after it is counted)."""

    def hook(event: Event) -> None:
        if isinstance(event, AttemptStarted):
            seen.append(sup_ref[0].statistics().running)
            assert seen[-1] <= cap

    return hook


@pytest.mark.parametrize("cap", [1, 3])
async def test_distinct_threads_and_running_never_exceed_the_root_cap(cap: int) -> None:
    """300 sync children under root max_threads=cap: at most `cap` distinct threads, running <= cap."""
    threads: set[int] = set()
    running: list[int] = []
    ref: list[Supervisor] = []

    def work(i: int) -> int:
        threads.add(threading.get_ident())
        if i % 7 == 0:
            time.sleep(0.001)  # let the workers overlap
        return i

    async with Supervisor(Policy(max_threads=cap), hooks=[_cap_checker(ref, cap, running)]) as sup:
        ref.append(sup)
        handles = [sup.start_soon(work, i) for i in range(300)]
    assert [h.result for h in handles] == list(range(300))
    assert 1 <= len(threads) <= cap
    assert len(running) == 300 and max(running) <= cap


async def test_distinct_threads_of_a_tree_are_bounded_by_the_root_cap() -> None:
    """Two child policies with caps 2 and 2 under a root cap of 3 use at most 3 threads in all."""
    threads: set[int] = set()

    def work() -> None:
        threads.add(threading.get_ident())
        time.sleep(0.0005)

    async with Supervisor(Policy(max_threads=3)) as root:
        a = root.child(Policy(name="a", max_threads=2))
        b = root.child(Policy(name="b", max_threads=2))
        for i in range(200):
            (a if i % 2 else b).start_soon(work)
    assert root.statistics().succeeded == 200
    assert 1 <= len(threads) <= 3


async def test_a_child_cap_without_a_root_cap_has_its_own_lane() -> None:
    """A child supervisor's cap bounds its own distinct threads when the root has none."""
    threads: set[int] = set()

    def work() -> None:
        threads.add(threading.get_ident())

    async with Supervisor() as root:
        a = root.child(Policy(name="a", max_threads=2))
        handles = [a.start_soon(work) for _ in range(200)]
    assert all(h.state is ChildState.SUCCEEDED for h in handles)
    assert 1 <= len(threads) <= 2


async def test_a_body_past_its_timeout_is_abandoned_and_shown_in_the_statistics() -> None:
    """A timed-out sync attempt fails with reason timeout; its worker counts as abandoned until it returns."""
    release = threading.Event()
    threads: set[int] = set()

    def stuck() -> None:
        threads.add(threading.get_ident())
        release.wait(10)

    def quick() -> str:
        threads.add(threading.get_ident())
        return "ok"

    async with Supervisor(Policy(max_threads=2, timeout=0.05)) as sup:
        handle = await sup.start_soon(stuck).wait()
        assert handle.state is ChildState.FAILED
        assert isinstance(handle.error, TimeoutError)
        lane = sup.statistics().lane
        assert lane is not None and lane.abandoned == 1
        # The other worker still runs children meanwhile.
        assert (await sup.start_soon(quick).wait()).result == "ok"
        release.set()
        with anyio.fail_after(5):
            while sup.statistics().lane.abandoned:  # type: ignore[union-attr]
                await anyio.sleep(0.01)
    assert len(threads) <= 2


async def test_a_child_cancelled_while_queued_never_runs() -> None:
    """With the one worker busy, a queued sync child cancelled before the worker takes it never runs."""
    gate = threading.Event()
    ran: list[str] = []

    def block() -> None:
        gate.wait(10)

    def queued() -> None:
        ran.append("queued")

    async with Supervisor(Policy(max_threads=1)) as sup:
        first = sup.start_soon(block)
        with anyio.fail_after(5):
            while first.state is not ChildState.RUNNING:
                await anyio.sleep(0.01)
        second = sup.start_soon(queued)
        with anyio.fail_after(5):
            while sup.statistics().waiting != 1:  # the second is queued behind the busy worker
                await anyio.sleep(0.01)
        assert second.state is ChildState.PENDING
        second.cancel()
        await second.wait()
        gate.set()
        await first.wait()
    assert second.state is ChildState.CANCELLED
    assert ran == []


async def test_a_running_child_cancelled_is_abandoned() -> None:
    """Cancelling a sync child whose body runs abandons the attempt at once; the body finishes on its own."""
    gate = threading.Event()
    done = threading.Event()

    def block() -> None:
        gate.wait(10)
        done.set()

    async with Supervisor(Policy(max_threads=1)) as sup:
        handle = sup.start_soon(block)
        with anyio.fail_after(5):
            while handle.state is not ChildState.RUNNING:
                await anyio.sleep(0.01)
        handle.cancel()
        await handle.wait()
        assert handle.state is ChildState.CANCELLED
        assert not done.is_set()
        gate.set()
    assert done.wait(5)


async def test_the_body_runs_in_the_childs_context() -> None:
    """A sync child on the lane sees the context it was started with, and what it sets stays its own."""

    def read() -> str:
        value = VAR.get()
        VAR.set("changed")
        return value

    async with Supervisor(Policy(max_threads=2)) as sup:
        ctx = contextvars.copy_context()
        ctx.run(VAR.set, "given")
        handles = [sup.start_soon(read, context=ctx) for _ in range(5)]
        token = VAR.set("spawner")
        plain = sup.start_soon(read)
        VAR.reset(token)
    assert [h.result for h in handles] == ["given"] * 5
    assert plain.result == "spawner"
    assert ctx[VAR] == "given"


async def test_from_thread_run_works_inside_a_lane_body() -> None:
    """`anyio.from_thread.run` called by a sync child on the lane runs in the supervisor's event loop."""

    async def on_loop(x: int) -> int:
        await anyio.lowlevel.checkpoint()
        return x * 2

    def body(x: int) -> int:
        return anyio.from_thread.run(on_loop, x)

    async with Supervisor(Policy(max_threads=2)) as sup:
        handles = [sup.start_soon(body, i) for i in range(20)]
    assert [h.result for h in handles] == [i * 2 for i in range(20)]


async def test_without_a_cap_the_root_lane_has_the_default_limiters_size_and_none_of_its_tokens() -> None:
    """No cap: sync children run on the root's unbounded lane, at most as many threads as anyio's default
    thread limiter has tokens, none of them borrowed from it (it stays free for the app's own threads)."""
    default = anyio.to_thread.current_default_thread_limiter()
    default.total_tokens = 3  # this test's event loop only
    threads: set[int] = set()
    borrowed: list[float] = []

    def work(i: int) -> int:
        threads.add(threading.get_ident())
        if i % 5 == 0:
            time.sleep(0.001)
        return i

    def hook(event: Event) -> None:
        if isinstance(event, AttemptStarted):
            borrowed.append(default.borrowed_tokens)  # hooks run on the loop, outside any task

    async with Supervisor(hooks=[hook]) as sup:
        handles = [sup.start_soon(work, i) for i in range(200)]
        await handles[-1].wait()
        lane = sup.statistics().lane
        assert lane is not None and not lane.bounded and lane.cap == 3
        assert sup.statistics().thread_limiter is None
    assert [h.result for h in handles] == list(range(200))
    assert 1 <= len(threads) <= 3
    assert borrowed == [0] * 200


async def test_an_unbounded_lane_replaces_a_worker_held_by_an_abandoned_body() -> None:
    """No cap: a body stuck past its timeout does not hold the lane's only worker slot; the next runs."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = 1  # this test's event loop only
    release = threading.Event()

    def stuck() -> None:
        release.wait(10)

    async with Supervisor(Policy(timeout=0.05)) as sup:
        try:
            assert isinstance((await sup.start_soon(stuck).wait()).error, TimeoutError)
            with anyio.fail_after(5):
                assert (await sup.start_soon(lambda: "next").wait()).result == "next"
            lane = sup.statistics().lane
            assert lane is not None and lane.abandoned == 1 and lane.workers == 2
        finally:
            release.set()


async def test_the_lane_owners_thread_limiter_figures_come_from_the_lane() -> None:
    """The owner of a bounded lane takes no limiter per attempt: its thread_limiter statistics are the
    lane's cap, the bodies running and the attempts queued."""
    gate = threading.Event()

    async with Supervisor(Policy(max_threads=2)) as sup:
        handles = [sup.start_soon(gate.wait, 10) for _ in range(5)]
        with anyio.fail_after(5):
            while sup.statistics().running != 2:
                await anyio.sleep(0.01)
        stats = sup.statistics()
        assert stats.thread_limiter is not None
        assert (stats.thread_limiter.total, stats.thread_limiter.borrowed) == (2, 2)
        assert stats.thread_limiter.waiting == stats.waiting == 3
        gate.set()
    assert all(h.result for h in handles)
    assert sup.statistics().thread_limiter.borrowed == 0  # type: ignore[union-attr]


def _lane_workers_alive() -> int:
    """Threads now inside a lane worker's loop (found by their frames)."""
    count = 0
    for frame in sys._current_frames().values():
        while frame is not None:
            if frame.f_code.co_name == "_work" and frame.f_code.co_filename.endswith("_lane.py"):
                count += 1
                break
            frame = frame.f_back  # type: ignore[assignment]
    return count


async def test_the_workers_leave_the_lane_when_the_supervisor_closes() -> None:
    """Once the supervisor has exited, no thread is left waiting in a lane worker's loop."""
    async with Supervisor(Policy(max_threads=3)) as sup:
        for _ in range(10):
            sup.start_soon(time.sleep, 0.001)
        with anyio.fail_after(5):
            while sup.statistics().succeeded < 10:
                await anyio.sleep(0.01)
        assert _lane_workers_alive() >= 1
    with anyio.fail_after(5):
        while _lane_workers_alive():
            await anyio.sleep(0.01)


@pytest.mark.parametrize("cap", [None, 2])
async def test_a_failed_bodys_traceback_holds_no_frame_of_the_lane_worker(cap: int | None) -> None:
    """A sync child's error refers to no frame of the lane's worker loop (which outlives the job: its
    locals would tie the error into a cycle freed only by a full collection, as taskflow's
    test_finished_tasks_leave_no_reference_cycles found); the body's own frame is kept."""

    def fail() -> None:
        raise ValueError("no")

    async with Supervisor(Policy(max_threads=cap)) as sup:
        handles = [sup.start_soon(fail) for _ in range(5)]
    for handle in handles:
        assert isinstance(handle.error, ValueError)
        names = []
        tb = handle.error.__traceback__
        while tb is not None:
            names.append(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        assert "_work" not in names
        assert names[-1] == "fail"
