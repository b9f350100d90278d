"""`RedisStore`: the durable `TaskStore` on a Redis server, shared by instances on any number of hosts.

The client is redis-py's synchronous one, called on worker threads (`anyio.to_thread.run_sync`, at most
`_THREADS` at a time per store), so the same code runs on asyncio and on trio: `redis.asyncio` needs an
asyncio loop. Every multi-key change is one Lua script (`_redis_lua`), atomic on the server; reads are
single commands or pipelines. The `redis` package is imported here only, when a store is opened.

Each call that is cancelled abandons its thread: the command still completes (or times out after the
client's `socket_timeout`) in the background, so a paused server never holds up a shutdown.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from datetime import datetime
from typing import Any, Self, TypeVar

import anyio

from .._exceptions import ConfigurationError, PayloadError
from .._models import TaskRecord, TaskStatus, id_matches
from . import _redis_lua as lua
from ._common import check_limit, check_ttl, cursor_position, parse_utc, utc_text
from ._paging import Page, encode_cursor
from ._protocol import FinishedRun, RecoveredTask, StoredChange, StoreSummary
from ._redis_access import SCRIPTS as ACCESS_SCRIPTS
from ._redis_access import RedisAccess
from ._redis_feed import foreign_ids, listing, messages
from ._redis_rows import NAMES, fetcher, from_fields, member, since_bound, walk, write_args
from ._redis_schedules import RedisSchedules

__all__ = ["RedisStore"]

T = TypeVar("T")

_THREADS = 4
_DELETE_BATCH = 1000
_CLIENT_DEFAULTS: dict[str, Any] = {"socket_timeout": 5.0, "socket_connect_timeout": 5.0}
"""A stalled server fails a call after 5 s instead of hanging it (the writer then retries with backoff)."""


def _redis_module() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - the test environment has the extra
        raise ImportError(
            "RedisStore needs the redis client: install the extra, pip install 'anyio-taskflow[redis]'"
        ) from exc
    return redis


class RedisStore(RedisAccess, RedisSchedules):
    """A `TaskStore` on the Redis server at `url`, every key under `prefix`.

    `ttl` (seconds, or None) deletes terminal records that ended more than `ttl` seconds ago, checked at
    each heartbeat; `client_kwargs` go to `redis.Redis.from_url` (they override the 5 s socket timeouts).
    The audit log and session revocation methods come from `RedisAccess`.
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        prefix: str = "taskflow",
        ttl: float | None = None,
        **client_kwargs: Any,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ConfigurationError(f"url must be a redis:// URL, got {url!r}")
        if not isinstance(prefix, str) or not prefix:
            raise ConfigurationError(f"prefix must be a non-empty str, got {prefix!r}")
        if ttl is not None and (
            isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl) or ttl <= 0
        ):
            raise ConfigurationError(f"ttl must be None or a number of seconds > 0, got {ttl!r}")
        self.url = url
        self.prefix = prefix
        self.ttl = ttl
        self.client_kwargs = {**_CLIENT_DEFAULTS, **client_kwargs}
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._limiter: anyio.CapacityLimiter | None = None
        self._kwargs: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, prefix={self.prefix!r}, ttl={self.ttl!r})"

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def key(self, *parts: str) -> str:
        """The Redis key `prefix:part:part...`."""
        return ":".join((self.prefix, *parts))

    # ---- plumbing --------------------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(client, *args)` on a worker thread."""
        limiter, client = self._limiter, self._client
        if limiter is None or client is None:
            raise RuntimeError(f"{self!r} is not open: call `await store.open()` first")
        return await anyio.to_thread.run_sync(fn, client, *args, limiter=limiter, abandon_on_cancel=True)

    def _run(self, client: Any, name: str, args: Sequence[Any]) -> Any:
        return self._scripts[name](args=[self.prefix, *args], client=client)

    async def open(self) -> None:
        """Connect, check that the server answers, and load the scripts (idempotent)."""
        if self._client is not None:
            return
        redis = _redis_module()
        kwargs = dict(self.client_kwargs)
        if "retry" not in kwargs:
            # One immediate retry (a pooled connection the server closed); the writer does the backing off.
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            kwargs["retry"] = Retry(NoBackoff(), 1)
        client = redis.Redis.from_url(self.url, **kwargs)
        scripts = {name: client.register_script(source) for name, source in _SCRIPTS.items()}
        try:
            await anyio.to_thread.run_sync(_load, client, scripts, abandon_on_cancel=True)
        except BaseException:
            client.close()
            raise
        self._client, self._scripts, self._kwargs = client, scripts, kwargs
        self._limiter = anyio.CapacityLimiter(_THREADS)

    async def close(self) -> None:
        """Close the connections (idempotent; `open()` works again)."""
        client, self._client, self._limiter = self._client, None, None
        await anyio.lowlevel.checkpoint()
        if client is not None:
            await anyio.to_thread.run_sync(client.close, abandon_on_cancel=True)

    async def key_changes(
        self, *, subscribed: Callable[[], None] = lambda: None
    ) -> AsyncIterator[tuple[str, str | None]]:
        """Idempotency keys as every instance claims them, `(key, holder id)`, and releases them,
        `(key, None)` (its holder failed, was cancelled or interrupted): Redis pub/sub on `prefix:keys`.

        Runs until cancelled; a lost connection raises (the caller resubscribes). Messages published while
        no subscription is open are not seen: callers load `held_keys()` too.
        """
        async with aclosing(messages(self._feed_client(), self.key("keys"), subscribed)) as feed:
            async for batch in feed:
                for data in batch:
                    holder, _, key = data.decode().partition("\n")
                    yield key, holder or None

    async def task_changes(
        self, instance_id: str, *, subscribed: Callable[[], None] = lambda: None
    ) -> AsyncIterator[list[StoredChange]]:
        """The records other instances write, a batch per burst of `prefix:feed` messages (a pipelined
        HMGET of the changed ids, listing form); records re-owned by `instance_id` meanwhile are skipped."""
        async with aclosing(messages(self._feed_client(), self.key("feed"), subscribed)) as feed:
            async for batch in feed:
                ids = foreign_ids(batch, instance_id)
                if ids:
                    changes = await self._call(listing, self.key, ids, instance_id)
                    if changes:
                        yield changes

    def _feed_client(self) -> Callable[[], Any]:
        """What makes a subscription's own client (`_redis_feed`: never a connection of the shared pool)."""
        if self._client is None:
            raise RuntimeError(f"{self!r} is not open: call `await store.open()` first")
        redis, kwargs = _redis_module(), self._kwargs
        return lambda: redis.Redis.from_url(self.url, **kwargs)

    # ---- the protocol ----------------------------------------------------------------------------------

    async def write(
        self, records: Sequence[TaskRecord], *, owner: str, requeue_ids: frozenset[str] = frozenset()
    ) -> None:
        """Upsert every record in one Lua script (all or nothing); args are encoded before any I/O."""
        args = write_args(records, owner, requeue_ids)
        if args:
            await self._call(self._run, "WRITE", [owner, *args])
        else:
            await self._call(lambda client: None)

    async def get(self, task_id: str) -> TaskRecord | None:
        """The full record with decoded args (one HMGET), or None."""
        values = await self._call(lambda c: c.hmget(self.key("t", task_id), NAMES))
        return None if values[0] is None else from_fields(NAMES, values, with_args=True)

    async def query(
        self,
        *,
        statuses: frozenset[TaskStatus] | None = None,
        func_name: str | None = None,
        tag: tuple[str, str] | None = None,
        since: datetime | None = None,
        task_id_prefix: str | None = None,
        task_id_search: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """Walk the narrowest index (tag, function, each status, or all), newest first, filtering the rest."""
        check_limit(limit)
        high = "(" + member(*cursor_position(cursor)) if cursor is not None else "+"
        low = since_bound(since) if since is not None else "-"
        if tag is not None:
            indexes = [self.key("i", "g", f"{len(tag[0])}:{tag[0]}{tag[1]}")]
        elif func_name is not None:
            indexes = [self.key("i", "f", func_name)]
        elif statuses is not None:
            indexes = [self.key("i", "s", TaskStatus(s).value) for s in sorted(statuses)]
        else:
            indexes = [self.key("i", "all")]

        def keep(r: TaskRecord) -> bool:
            return (
                (statuses is None or r.status in statuses)
                and (func_name is None or r.func_name == func_name)
                and (tag is None or r.tags.get(tag[0]) == tag[1])
                and (task_id_prefix is None or r.task_id.startswith(task_id_prefix))
                and (task_id_search is None or id_matches(r.task_id, task_id_search))
            )

        def run(client: Any) -> list[tuple[str, TaskRecord]]:
            found = [
                hit
                for index in indexes
                for hit in walk(fetcher(client, self.key), index, high, low, limit + 1, keep)
            ]
            return sorted(found, key=lambda hit: hit[0], reverse=True)[: limit + 1]

        found = await self._call(run)
        records = [record for _, record in found[:limit]]
        return Page(records, encode_cursor(records[-1]) if len(found) > limit else None)

    async def counts(self) -> dict[TaskStatus, int]:
        """Stored records per status, zeros included (one HGETALL of the counter hash)."""
        raw = await self._call(lambda c: c.hgetall(self.key("c")))
        counts = dict.fromkeys(TaskStatus, 0)
        for status, count in raw.items():
            counts[TaskStatus(status.decode())] = int(count)
        return counts

    async def summary(self, *, recent: int) -> StoreSummary:
        """Counts per function and status (a counter hash) and the latest-ended records (the end index)."""
        check_limit(recent)

        def run(client: Any) -> tuple[dict[bytes, bytes], list[list[bytes | None]]]:
            pipe = client.pipeline(transaction=True)  # both reads see the same moment
            pipe.hgetall(self.key("cf"))
            pipe.zrevrange(self.key("i", "end"), 0, recent - 1)
            counts, ids = pipe.execute()
            pipe = client.pipeline(transaction=False)
            for task_id in ids:
                pipe.hmget(self.key("t", task_id.decode()), ["func_name", "status", "start_time", "end_time"])
            return counts, pipe.execute()

        raw_counts, rows = await self._call(run)
        by_function: dict[str, dict[TaskStatus, int]] = {}
        for field, count in raw_counts.items():
            status, _, func_name = field.decode().partition("|")
            if int(count) > 0:
                by_function.setdefault(func_name, {})[TaskStatus(status)] = int(count)
        runs = []
        for func, state, start_text, end_text in rows:
            end = parse_utc(end_text.decode()) if end_text is not None else None
            if func is None or state is None or end is None:
                continue  # deleted between the two reads
            start = parse_utc(start_text.decode()) if start_text is not None else None
            duration = None if start is None else (end - start).total_seconds()
            runs.append(FinishedRun(func.decode(), TaskStatus(state.decode()), end.timestamp(), duration))
        return StoreSummary(by_function, runs)

    async def claim_idempotency_key(self, key: str, task_id: str) -> str | None:
        """Bind `key` to `task_id` unless a task that has not failed holds it (one Lua script)."""
        holder = await self._call(self._run, "CLAIM_KEY", [key, task_id])
        return None if holder is None else holder.decode()

    async def held_keys(self, *, limit: int) -> dict[str, str]:
        """Keys held by SUCCESS tasks, newest first, at most `limit`."""
        check_limit(limit)

        def run(client: Any) -> dict[str, str]:
            members = client.zrange(
                self.key("i", "held"), "+", "-", desc=True, bylex=True, offset=0, num=limit
            )
            ids = [m.decode().partition("|")[2] for m in members]
            keys = client.mget([self.key("kt", task_id) for task_id in ids]) if ids else []
            return {key.decode(): task_id for key, task_id in zip(keys, ids, strict=True) if key is not None}

        return await self._call(run)

    async def heartbeat(self, instance_id: str, *, ttl: float) -> None:
        """The instance's key exists for `ttl` seconds (the server expires it); prunes by `self.ttl` too."""
        check_ttl(ttl)
        milliseconds = round(ttl * 1000)
        key = self.key("h", instance_id)
        await self._call(lambda c: c.set(key, 1, px=milliseconds) if milliseconds > 0 else c.delete(key))
        if self.ttl is not None:
            await self.delete_before(datetime.fromtimestamp(time.time() - self.ttl).astimezone())

    async def forget_instance(self, instance_id: str) -> None:
        """Delete the instance's heartbeat key."""
        await self._call(lambda c: c.delete(self.key("h", instance_id)))

    async def claim_orphans(self, instance_id: str) -> list[RecoveredTask]:
        """Re-own, in one Lua script, the live records of owners without a heartbeat key; oldest first."""

        def run(client: Any) -> list[tuple[list[bytes | None], str]]:
            claimed = self._run(client, "CLAIM_ORPHANS", [instance_id])
            pairs = [(claimed[n].decode(), claimed[n + 1].decode()) for n in range(0, len(claimed), 2)]
            pipe = client.pipeline(transaction=False)
            for task_id, _ in pairs:
                pipe.hmget(self.key("t", task_id), NAMES)
            return list(zip(pipe.execute(), (owner for _, owner in pairs), strict=True))

        recovered = []
        for values, previous in await self._call(run):
            if values[0] is None:
                continue  # deleted since (only terminal records are deleted, so not in practice)
            requeue = values[NAMES.index("requeue")] == b"1"
            try:
                record = from_fields(NAMES, values, with_args=True)
            except PayloadError as exc:
                record = from_fields(NAMES, values, with_args=False)
                record.status_reason = f"stored arguments are unreadable: {exc}"
                requeue = False
            recovered.append(RecoveredTask(record, requeue, previous))
        recovered.sort(key=lambda r: (utc_text(r.record.created_at), r.record.task_id))
        return recovered

    async def delete_before(self, cutoff: datetime) -> int:
        """Delete terminal records that ended before `cutoff`, a bounded batch per script."""
        score, text = cutoff.timestamp(), utc_text(cutoff)
        deleted = 0
        while True:
            gone, scanned = await self._call(self._run, "DELETE_BEFORE", [score, text, _DELETE_BATCH])
            deleted += int(gone)
            if scanned < _DELETE_BATCH or gone == 0:
                return deleted

    async def delete(self, task_ids: Sequence[str]) -> int:
        """Delete the terminal records among `task_ids` (a script per 1,000 ids)."""
        ids = list(dict.fromkeys(task_ids))
        deleted = 0
        for start in range(0, len(ids), _DELETE_BATCH):
            deleted += int(await self._call(self._run, "DELETE", ids[start : start + _DELETE_BATCH]))
        if not ids:
            await self._call(lambda client: None)
        return deleted


_TASK_SCRIPTS = ("WRITE", "CLAIM_KEY", "CLAIM_ORPHANS", "DELETE", "DELETE_BEFORE")
_SCRIPTS = {**{name: getattr(lua, name) for name in _TASK_SCRIPTS}, **ACCESS_SCRIPTS}


def _load(client: Any, scripts: dict[str, Any]) -> None:
    client.ping()
    for script in scripts.values():
        script.sha = client.script_load(script.script)
