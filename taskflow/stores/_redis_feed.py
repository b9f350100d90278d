"""The pub/sub side of `RedisStore`: one subscription per feed, on a connection of its own.

A subscription reads with redis-py's blocking `get_message` on a worker thread; a cancelled read abandons
that thread (so a paused server never holds up a shutdown) and the read goes on in the background for up
to `READ_TIMEOUT` (or the client's socket timeout, if the server stalls mid-message). Two rules keep that
abandoned read harmless:

- **Its own client.** The subscription's connection comes from a client (and pool) of its own, never from
  the pool that serves the store's commands. Closing a pub/sub returns its connection to its pool: had that
  been the shared pool, the next command could take the very connection the abandoned read still reads,
  and either side would steal the other's replies or close its socket (a lost reply, a 5 s timeout).
- **One thread at a time.** Every use of the subscription (subscribe, read, close) holds its lock, so the
  close waits for an abandoned read to return instead of closing the socket under it. The close runs on a
  thread of its own that nobody awaits: ending a feed never waits for the network.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

import anyio

from ._protocol import StoredChange
from ._redis_rows import LIST_NAMES, from_fields

_log = logging.getLogger("taskflow.store")
READ_TIMEOUT = 1.0  # how long one read waits for a message (the longest an abandoned read runs on)
_OWNER = LIST_NAMES.index("owner")
DRAIN_LIMIT = 1000  # messages taken in one read once the first one arrived (a burst is one batch)


class _Subscription:
    """One pub/sub connection, used by one thread at a time."""

    def __init__(self, client: Any, channel: str) -> None:
        self._client = client
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._channel = channel
        self._lock = threading.Lock()
        self._closed = False

    def subscribe(self) -> None:
        """Subscribe and wait for the server's confirmation: from then on, no message is missed."""
        with self._lock:
            if self._closed:
                return
            self._pubsub.subscribe(self._channel)
            # The confirmation is the first reply on the connection; reading it here means the feed is live.
            confirmation = self._pubsub.parse_response(block=True)
            self._pubsub.handle_message(confirmation, ignore_subscribe_messages=True)

    def read(self) -> list[bytes]:
        """The data of the messages published since the last read: waits up to READ_TIMEOUT for the first."""
        with self._lock:
            out: list[bytes] = []
            timeout = READ_TIMEOUT
            while not self._closed and len(out) < DRAIN_LIMIT:
                message = self._pubsub.get_message(timeout=timeout)
                if message is None:
                    break
                if message.get("type") == "message":
                    out.append(message["data"])
                timeout = 0.0
            return out

    def close(self) -> None:
        with self._lock:
            self._closed = True
            try:
                self._pubsub.close()
                self._client.close()
            except Exception:  # a dead connection: nothing left to release
                _log.debug("closing a feed subscription failed", exc_info=True)


async def messages(
    connect: Callable[[], Any], channel: str, subscribed: Callable[[], None]
) -> AsyncGenerator[list[bytes], None]:
    """The data of the messages published on `channel`, a batch per read, until cancelled.

    `connect()` makes a new redis-py client (with its own pool); `subscribed()` is called once the server
    confirmed the subscription. A lost connection raises (the caller subscribes again); messages
    published while no subscription is open are not seen.
    """
    subscription = _Subscription(connect(), channel)
    try:
        await anyio.to_thread.run_sync(subscription.subscribe, abandon_on_cancel=True)
        subscribed()
        while True:
            batch = await anyio.to_thread.run_sync(subscription.read, abandon_on_cancel=True)
            if batch:
                yield batch
    finally:
        # After the read that may still run (it holds the lock); never awaited, so never blocks a shutdown.
        threading.Thread(target=subscription.close, name="taskflow-redis-feed-close", daemon=True).start()


def foreign_ids(batch: Sequence[bytes], instance_id: str) -> list[str]:
    """The task ids in these feed messages ("<owner>\\n<id>\\n<id>...") written by other instances."""
    ids: dict[str, None] = {}
    for data in batch:
        owner, *written = data.decode().split("\n")
        if owner != instance_id:
            ids.update(dict.fromkeys(written))
    return list(ids)


def listing(client: Any, key: Callable[..., str], ids: Sequence[str], instance_id: str) -> list[StoredChange]:
    """The listing records of `ids` with their owners (one pipeline), except those `instance_id` owns."""
    pipe = client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hmget(key("t", task_id), LIST_NAMES)
    out = []
    for values in pipe.execute():
        owner = values[_OWNER]
        if values[0] is not None and owner is not None and owner.decode() != instance_id:
            out.append(StoredChange(from_fields(LIST_NAMES, values, with_args=False), owner.decode()))
    return out
