"""Concurrency limits: never exceeded in a burst, nested root/child caps, no starvation across policies."""

from __future__ import annotations

import threading

import anyio

from supervisors import ChildState, Policy, Supervisor


class Peak:
    """Counts how many callers are inside at once (thread-safe, for sync children too)."""

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)

    def exit(self) -> None:
        with self._lock:
            self.current -= 1


async def test_max_concurrency_holds_under_a_burst_of_1000_async_children() -> None:
    """1,000 async children with max_concurrency=7 never run more than 7 at once, and all finish."""
    peak = Peak()

    async def work() -> None:
        peak.enter()
        await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()
        peak.exit()

    async with Supervisor(Policy(max_concurrency=7)) as sup:
        handles = [sup.start_soon(work) for _ in range(1000)]
    assert peak.peak == 7
    assert all(h.state is ChildState.SUCCEEDED for h in handles)


async def test_max_threads_holds_under_a_burst_of_1000_sync_children() -> None:
    """1,000 sync children with max_threads=4 never run more than 4 threads at once."""
    peak = Peak()

    def work() -> None:
        peak.enter()
        peak.exit()

    async with Supervisor(Policy(max_threads=4)) as sup:
        handles = [sup.start_soon(work) for _ in range(1000)]
    assert 1 <= peak.peak <= 4
    assert all(h.state is ChildState.SUCCEEDED for h in handles)


async def test_root_cap_is_global_and_child_cap_applies_within_it() -> None:
    """Root cap 10, child caps 3 and 20: at most 3 of A and 10 in total run at once."""
    total, peak_a = Peak(), Peak()

    async def work(own: Peak | None) -> None:
        total.enter()
        if own:
            own.enter()
        await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()
        if own:
            own.exit()
        total.exit()

    async with Supervisor(Policy(max_concurrency=10)) as root:
        a = root.child(Policy(name="a", max_concurrency=3))
        b = root.child(Policy(name="b", max_concurrency=20))
        for i in range(1000):
            if i % 2:
                a.start_soon(work, peak_a)
            else:
                b.start_soon(work, None)
    assert peak_a.peak == 3
    assert total.peak == 10
    stats = root.statistics()
    assert stats.succeeded == 1000
    assert [c.succeeded for c in stats.children] == [500, 500]


async def test_a_flood_on_one_policy_does_not_block_another() -> None:
    """1,000 blocked children of policy A (cap 5) leave policy B able to run under the shared root cap."""
    gate = anyio.Event()
    async with Supervisor(Policy(max_concurrency=8)) as root:
        a = root.child(Policy(name="a", max_concurrency=5))
        b = root.child(Policy(name="b", max_concurrency=5))
        flood = [a.start_soon(gate.wait) for _ in range(1000)]
        await anyio.wait_all_tasks_blocked()
        done = await b.start_soon(anyio.lowlevel.checkpoint).wait()
        assert done.state is ChildState.SUCCEEDED
        stats = a.statistics()
        assert (stats.running, stats.waiting) == (5, 995)
        gate.set()
    assert all(h.state is ChildState.SUCCEEDED for h in flood)


async def test_sync_thread_caps_nest_root_and_child() -> None:
    """Sync children honour both their child supervisor's and the root's max_threads."""
    total = Peak()

    def work() -> None:
        total.enter()
        total.exit()

    async with Supervisor(Policy(max_threads=3)) as root:
        a = root.child(Policy(name="a", max_threads=2))
        b = root.child(Policy(name="b", max_threads=2))
        for i in range(400):
            (a if i % 2 else b).start_soon(work)
    assert 1 <= total.peak <= 3
    assert root.statistics().succeeded == 400
