"""RedisStore's pub/sub feeds: a subscription never shares a connection with the store's commands."""

from __future__ import annotations

import anyio
import pytest

from taskflow.stores import RedisStore
from tests.redis_service import REDIS_URL, redis_prefix

pytestmark = [pytest.mark.anyio, pytest.mark.services]


async def test_commands_right_after_a_cancelled_key_feed_answer_at_once(anyio_backend: str) -> None:
    """Cancelling the key feed mid-read, then running commands at once: each answers (no stolen reply)."""
    with redis_prefix() as prefix:
        async with RedisStore(REDIS_URL, prefix=prefix, socket_timeout=3.0) as store:
            for round_ in range(5):
                seen = anyio.Event()

                async def follow(seen: anyio.Event) -> None:
                    async for _key, _holder in store.key_changes():
                        seen.set()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(follow, seen)
                    with anyio.fail_after(5):  # subscribed once a claim comes through
                        while not seen.is_set():
                            await store.claim_idempotency_key(f"k{round_}", f"t{round_}")
                            with anyio.move_on_after(0.05):
                                await seen.wait()
                    await anyio.sleep(0.01)  # the next read is in flight in its thread
                    tg.cancel_scope.cancel()
                with anyio.fail_after(2):  # a reply read by the abandoned feed thread would take 3 s
                    await store.forget_instance("gone")
                    await store.heartbeat("alive", ttl=1.0)
                    assert await store.get("missing") is None
