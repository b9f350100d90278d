"""The race window of idempotency keys across instances: from a claim's answer on one store handle to the
claim reaching another handle through the key feed (`key_changes`), on SQLite and on Redis.

    python benchmarks/key_feed_window.py [--samples 100] [--redis redis://127.0.0.1:6379/13]

Two handles onto one store stand for two instances. Each sample claims a fresh key on the first, at a
random moment (so SQLite's poll phase is uniform), and waits for the second's feed to yield it. Also
reported: how long the claim itself takes (its commit). Bounded: `--samples` claims per store, each waited
for at most 5 s. Runs on asyncio; Redis is skipped when the server does not answer.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio

from taskflow.stores import RedisStore, SqliteStore


def summary(values: list[float]) -> dict[str, float]:
    """Median, 95th percentile and worst, in milliseconds."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


async def window(first: Any, second: Any, samples: int) -> dict[str, Any]:
    """Claim `samples` keys on `first`; time each until `second`'s key feed yields it."""
    arrived: dict[str, float] = {}
    waiting: dict[str, anyio.Event] = {}
    live = anyio.Event()
    lags, commits = [], []

    async def follow() -> None:
        async for key, holder in second.key_changes(subscribed=live.set):
            if holder is not None and key in waiting:
                arrived[key] = time.perf_counter()
                waiting[key].set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(follow)
        await live.wait()
        for i in range(samples):
            await anyio.sleep(random.uniform(0, 0.5))  # a poll interval: any phase of the poll
            key = f"bench-{uuid.uuid4().hex}"
            waiting[key] = anyio.Event()
            began = time.perf_counter()
            assert await first.claim_idempotency_key(key, f"task-{i}") is None
            answered = time.perf_counter()
            with anyio.fail_after(5):
                await waiting[key].wait()
            commits.append(answered - began)
            lags.append(max(0.0, arrived[key] - answered))  # 0: it arrived before the answer did
        tg.cancel_scope.cancel()
    return {"samples": samples, "feed_lag": summary(lags), "claim": summary(commits)}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keys.db"
        async with SqliteStore(path) as first, SqliteStore(path) as second:
            out["sqlite"] = await window(first, second, args.samples)
    prefix = f"bench-keys-{uuid.uuid4().hex[:8]}"
    try:
        async with (
            RedisStore(args.redis, prefix=prefix) as first,
            RedisStore(args.redis, prefix=prefix) as second,
        ):
            out["redis"] = await window(first, second, args.samples)
    except Exception as exc:  # no server: report SQLite only
        out["redis"] = f"skipped: {exc}"
    else:
        import redis

        with redis.Redis.from_url(args.redis) as client:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    for store, figures in anyio.run(measure, args).items():
        print(store, figures)


if __name__ == "__main__":
    main()
