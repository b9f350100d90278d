"""A supervisor running a flaky worker with retries, a permanent heartbeat actor and a graceful shutdown
with a checkpoint. Run with `python examples/supervised_worker.py [asyncio|trio]`."""

from __future__ import annotations

import sys

import anyio

from supervisors import ChildHandle, Event, Policy, Restart, RetryScheduled, Supervisor


def log(event: Event) -> None:
    if isinstance(event, RetryScheduled):
        print(f"retry {event.name} attempt={event.attempt} error={event.error!r} delay={event.delay:.2f}")


async def flaky_fetch(url: str, state: dict[str, int]) -> str:
    state["calls"] += 1
    if state["calls"] < 3:  # the first two calls fail, like a service that is still waking up
        raise ConnectionError(f"{url} unreachable")
    return f"fetched {url}"


async def heartbeat(beats: list[int]) -> None:
    while True:
        beats.append(len(beats) + 1)
        await anyio.sleep(0.01)


async def save_progress(handle: ChildHandle) -> str:
    return f"checkpointed {handle.name}"


async def main() -> None:
    policy = Policy(name="fetch", retries=4, delay=0.01, backoff=2.0, max_concurrency=2)
    beats: list[int] = []
    async with Supervisor(policy, hooks=[log], shutdown_grace=0.05, checkpoint_timeout=1.0) as sup:
        sup.start_soon(
            heartbeat, beats, name="heartbeat", restart=Restart.PERMANENT, checkpoint=save_progress
        )
        handle = await sup.start_soon(flaky_fetch, "https://example.test", {"calls": 0}, name="fetch").wait()
        print(f"{handle.name}: {handle.state.value} after {handle.attempts} attempts -> {handle.result}")
    report = sup.shutdown_report
    assert report is not None
    for child in report.interrupted:
        print(f"interrupted {child.name}: {child.checkpoint_result}")
    print(f"heartbeat alive: {len(beats) > 0}")
    stats = sup.statistics()
    print(f"stats: started={stats.started} succeeded={stats.succeeded} interrupted={stats.interrupted}")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
