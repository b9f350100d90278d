"""Following a store's live feeds: every instance's idempotency-key claims, and the records others write.

Apart from `Persistence` because a feed is a subscription with its own failure mode (lost, then taken up
again with backoff) and its own consumers: the key feed fills the runtime's key mirror, the change feed
reaches whoever watches other instances (the dashboard's bus, through `RemoteSinks`). Only the stores that
offer a feed (`KeyFeedStore`, `ChangeFeedStore`) are followed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import TypeVar

import anyio
from anyio.abc import TaskGroup

from .stores import ChangeFeedStore, KeyFeedStore, StoredChange, TaskStore, backoff_delay

FEED_START_TIMEOUT = 2.0  # how long start-up waits for the store's feeds to go live (then serves anyway)
T = TypeVar("T")
RemoteSink = Callable[[list[StoredChange]], None]
"""Takes the records other instances wrote (on the event loop; it must not block)."""

_log = logging.getLogger("taskflow.store")


class RemoteSinks:
    """Who is sent the records other instances write; the change feed is followed only if someone is."""

    def __init__(self) -> None:
        self._sinks: list[RemoteSink] = []

    def watch(self, sink: RemoteSink) -> Callable[[], None]:
        """Send `sink` the records other instances write; returns the call that stops it."""
        self._sinks.append(sink)
        return lambda: self._sinks.remove(sink) if sink in self._sinks else None

    @property
    def watched(self) -> bool:
        return bool(self._sinks)

    def send(self, changes: list[StoredChange]) -> None:
        for sink in list(self._sinks):
            sink(changes)


async def follow_feeds(
    tg: TaskGroup,
    store: TaskStore,
    instance_id: str,
    *,
    mirror_key: Callable[[str, str | None], None],
    remote: RemoteSinks,
    retry_cap: float,
) -> None:
    """Follow, in `tg`, the feeds `store` offers; return once they are live (or after `FEED_START_TIMEOUT`
    if the store does not answer), so a key claimed or a task written after that is never missed."""
    live: list[anyio.Event] = []
    if isinstance(store, KeyFeedStore):
        live.append(anyio.Event())
        keys = partial(store.key_changes, subscribed=live[-1].set)
        tg.start_soon(_follow, keys, lambda change: mirror_key(*change), "key feed", retry_cap)
    if isinstance(store, ChangeFeedStore) and remote.watched:
        live.append(anyio.Event())
        changes = partial(store.task_changes, instance_id, subscribed=live[-1].set)
        tg.start_soon(_follow, changes, remote.send, "change feed", retry_cap)
    with anyio.move_on_after(FEED_START_TIMEOUT):
        for event in live:
            await event.wait()


async def _follow(
    feed: Callable[[], AsyncIterator[T]], handle: Callable[[T], None], name: str, retry_cap: float
) -> None:
    """Hand every item of a store feed to `handle`; subscribe again, with backoff, when it is lost."""
    attempt = 0
    while True:
        try:
            async for item in feed():
                attempt = 0
                handle(item)
        except Exception:
            attempt += 1
            _log.warning("the store's %s was lost; subscribing again", name, exc_info=attempt == 1)
        await anyio.sleep(backoff_delay(max(attempt, 1), base=0.1, cap=retry_cap))
