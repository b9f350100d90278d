"""`RedisStore`'s schedules (`ScheduleStore`): every change is one Lua script, atomic on the server.

Keys under the store's prefix `P` (next to those listed in `_redis_lua`):

    P:sc:<name>       hash: last_slot (UTC text), last_run_id, paused ("1"/"0"), skipped (count)
    P:sr:<run id>     hash: a run ticket: owner, and schedule + slot, or run_key (a one-off's)
    P:sr              set of the run ids that have a ticket (what `adopt_runs` walks)
    P:so:<run key>    hash: a one-off (func_name, fire_at, call, encrypted_payload, tags, created_at, run_id)
    P:so              sorted set of the unclaimed one-offs' run keys by fire time (Unix seconds)

A run is live while its record `P:t:<id>` is pending or running, or, with no record yet, while its ticket
exists. Scripts take the prefix as ARGV[1] and build their keys (one server, not Redis Cluster).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from ._common import check_limit, parse_utc, utc_text
from ._schedule_protocol import AdoptedRun, ClaimOutcome, OneOffEntry, ScheduleState

T = TypeVar("T")

_LIVE = r"""
local P = ARGV[1]
local function live(run)
  if not run or run == '' then return false end
  local status = redis.call('HGET', P .. ':t:' .. run, 'status')
  if status then return status == 'pending' or status == 'running' end
  return redis.call('EXISTS', P .. ':sr:' .. run) == 1
end
"""

CLAIM_SLOT = (
    _LIVE
    + r"""
-- ARGV: prefix, name, slot, expected ('' = none), run id ('' = none), owner, exclusive, also skipped
local key = P .. ':sc:' .. ARGV[2]
local row = redis.call('HMGET', key, 'last_slot', 'last_run_id', 'paused')
local stored = row[1] or ''
if stored ~= ARGV[4] or (ARGV[4] ~= '' and ARGV[3] <= ARGV[4]) then return 'lost' end
redis.call('HSET', key, 'last_slot', ARGV[3])
local extra = tonumber(ARGV[8])
if ARGV[5] == '' or row[3] == '1' or (ARGV[7] == '1' and live(row[2])) then
  redis.call('HINCRBY', key, 'skipped', extra + 1)
  return 'skipped'
end
redis.call('HSET', key, 'last_run_id', ARGV[5])
redis.call('HINCRBY', key, 'skipped', extra)
redis.call('HSET', P .. ':sr:' .. ARGV[5], 'owner', ARGV[6], 'schedule', ARGV[2], 'slot', ARGV[3])
redis.call('SADD', P .. ':sr', ARGV[5])
return 'claimed'
"""
)

CLAIM_EXTRA = (
    _LIVE
    + r"""
-- ARGV: prefix, name, run id, owner, exclusive
local key = P .. ':sc:' .. ARGV[2]
if ARGV[5] == '1' and live(redis.call('HGET', key, 'last_run_id')) then return 'busy' end
redis.call('HSET', key, 'last_run_id', ARGV[3])
redis.call('HSET', P .. ':sr:' .. ARGV[3], 'owner', ARGV[4], 'schedule', ARGV[2])
redis.call('SADD', P .. ':sr', ARGV[3])
return 'claimed'
"""
)

RELEASE_RUN = r"""
-- ARGV: prefix, run id
local P = ARGV[1]
local ticket = P .. ':sr:' .. ARGV[2]
local run_key = redis.call('HGET', ticket, 'run_key')
redis.call('DEL', ticket)
redis.call('SREM', P .. ':sr', ARGV[2])
if run_key and redis.call('HGET', P .. ':so:' .. run_key, 'run_id') == ARGV[2] then
  redis.call('DEL', P .. ':so:' .. run_key)
end
return 1
"""

ADOPT_RUNS = r"""
-- ARGV: prefix, adopting instance. Returns {run id 1, previous owner 1, ...}.
local P, me = ARGV[1], ARGV[2]
local out = {}
for _, run in ipairs(redis.call('SMEMBERS', P .. ':sr')) do
  local ticket = P .. ':sr:' .. run
  local owner = redis.call('HGET', ticket, 'owner')
  if not owner then
    redis.call('SREM', P .. ':sr', run)
  elseif owner ~= me and redis.call('EXISTS', P .. ':h:' .. owner) == 0 then
    redis.call('HSET', ticket, 'owner', me)
    out[#out + 1] = run
    out[#out + 1] = owner
  end
end
return out
"""

PUT_ONCE = r"""
-- ARGV: prefix, run key, fire score, then the entry's field/value pairs
local P = ARGV[1]
local key = P .. ':so:' .. ARGV[2]
if redis.call('HEXISTS', key, 'run_id') == 1 then return 0 end
redis.call('DEL', key)
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', key, unpack(fields))
redis.call('ZADD', P .. ':so', ARGV[3], ARGV[2])
return 1
"""

CANCEL_ONCE = r"""
-- ARGV: prefix, run key
local P = ARGV[1]
local key = P .. ':so:' .. ARGV[2]
if redis.call('EXISTS', key) == 0 or redis.call('HEXISTS', key, 'run_id') == 1 then return 0 end
redis.call('DEL', key)
redis.call('ZREM', P .. ':so', ARGV[2])
return 1
"""

CLAIM_ONCE = r"""
-- ARGV: prefix, run key, run id, owner. Returns the entry's HGETALL, or false.
local P = ARGV[1]
local key = P .. ':so:' .. ARGV[2]
if redis.call('EXISTS', key) == 0 or redis.call('HEXISTS', key, 'run_id') == 1 then return false end
redis.call('HSET', key, 'run_id', ARGV[3])
redis.call('ZREM', P .. ':so', ARGV[2])
redis.call('HSET', P .. ':sr:' .. ARGV[3], 'owner', ARGV[4], 'run_key', ARGV[2])
redis.call('SADD', P .. ':sr', ARGV[3])
return redis.call('HGETALL', key)
"""

_OUTCOMES = {b"claimed": ClaimOutcome.CLAIMED, b"lost": ClaimOutcome.LOST, b"skipped": ClaimOutcome.SKIPPED,
             b"busy": ClaimOutcome.BUSY}  # fmt: skip


def _text(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None


def _entry(fields: dict[bytes, bytes]) -> OneOffEntry:
    def text(name: str) -> str | None:
        return _text(fields.get(name.encode()))

    when = parse_utc(text("fire_at"))
    assert when is not None  # always written
    payload = fields.get(b"encrypted_payload")
    priority = text("priority")
    return OneOffEntry(
        text("run_key") or "", text("func_name") or "", when, text("call") or "", payload,
        json.loads(text("tags") or "{}"), parse_utc(text("created_at")), text("run_id"), text("queue"),
        int(priority) if priority is not None else None,
    )  # fmt: skip


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    return {flat[n]: flat[n + 1] for n in range(0, len(flat), 2)}


class RedisSchedules:
    """The `ScheduleStore` methods of `RedisStore` (which supplies `_call`, `key` and `prefix`)."""

    prefix: str

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:  # pragma: no cover - RedisStore's
        raise NotImplementedError

    def key(self, *parts: str) -> str:  # pragma: no cover - RedisStore's
        raise NotImplementedError

    def _script(self, client: Any, source: str, *args: Any) -> Any:
        # redis-py's Script runs EVALSHA and loads the script on NOSCRIPT (a restarted server).
        return client.register_script(source)(args=[self.prefix, *args], client=client)

    async def schedule_states(self, names: Sequence[str]) -> dict[str, ScheduleState]:
        """One pipelined HMGET per schedule."""
        names = list(names)

        def run(client: Any) -> list[list[bytes | None]]:
            pipe = client.pipeline(transaction=False)
            for name in names:
                pipe.hmget(self.key("sc", name), ["last_slot", "last_run_id", "paused", "skipped"])
            return list(pipe.execute())

        rows = await self._call(run)
        states = {}
        for name, (slot, run_id, paused, skipped) in zip(names, rows, strict=True):
            states[name] = ScheduleState(
                name, parse_utc(_text(slot)), _text(run_id), paused == b"1", int(skipped or 0)
            )
        return states

    async def claim_slot(
        self,
        name: str,
        *,
        slot: datetime,
        expected: datetime | None,
        run_id: str | None,
        owner: str,
        exclusive: bool,
        also_skipped: int = 0,
    ) -> ClaimOutcome:
        """Compare-and-set of the last slot and the ticket, in one script."""
        args = [name, utc_text(slot), utc_text(expected) if expected is not None else "", run_id or "", owner,
                "1" if exclusive else "0", int(also_skipped)]  # fmt: skip
        return _OUTCOMES[await self._call(self._script, CLAIM_SLOT, *args)]

    async def claim_extra(self, name: str, *, run_id: str, owner: str, exclusive: bool) -> ClaimOutcome:
        """An extra run (run now), refused while the last run is live when `exclusive`."""
        args = [name, run_id, owner, "1" if exclusive else "0"]
        return _OUTCOMES[await self._call(self._script, CLAIM_EXTRA, *args)]

    async def set_paused(self, name: str, paused: bool) -> None:
        """HSET of the pause flag."""
        key = self.key("sc", name)
        await self._call(lambda c: c.hset(key, "paused", "1" if paused else "0"))

    async def release_run(self, run_id: str) -> None:
        """Delete the ticket and the one-off it claimed."""
        await self._call(self._script, RELEASE_RUN, run_id)

    async def adopt_runs(self, instance_id: str) -> list[AdoptedRun]:
        """Re-own the tickets of owners without a heartbeat key, then read them (now ours)."""

        def run(client: Any) -> list[AdoptedRun]:
            flat = self._script(client, ADOPT_RUNS, instance_id)
            pairs = [(flat[n].decode(), flat[n + 1].decode()) for n in range(0, len(flat), 2)]
            pipe = client.pipeline(transaction=False)
            for run_id, _ in pairs:
                pipe.hgetall(self.key("sr", run_id))
            tickets = pipe.execute() if pairs else []
            keys = [_text(t.get(b"run_key")) for t in tickets]
            for run_key in keys:
                if run_key is not None:
                    pipe.hgetall(self.key("so", run_key))
            entries = iter(pipe.execute() if any(k is not None for k in keys) else [])
            adopted = []
            for (run_id, owner), ticket, run_key in zip(pairs, tickets, keys, strict=True):
                found = next(entries) if run_key is not None else None
                once = _entry({b"run_key": run_key.encode(), **found}) if found and run_key else None
                slot = parse_utc(_text(ticket.get(b"slot")))
                adopted.append(AdoptedRun(run_id, owner, _text(ticket.get(b"schedule")), slot, once))
            return adopted

        return await self._call(run)

    async def put_once(self, entry: OneOffEntry) -> bool:
        """Replace the unclaimed entry's hash and its place in the fire-time index."""
        fields: list[Any] = [
            "func_name", entry.func_name, "fire_at", utc_text(entry.fire_at), "call", entry.call,
            "tags", json.dumps(entry.tags, sort_keys=True),
        ]  # fmt: skip
        if entry.encrypted_payload is not None:
            fields += ["encrypted_payload", entry.encrypted_payload]
        if entry.created_at is not None:
            fields += ["created_at", utc_text(entry.created_at)]
        if entry.queue is not None:
            fields += ["queue", entry.queue]
        if entry.priority is not None:
            fields += ["priority", str(entry.priority)]
        args = [entry.run_key, entry.fire_at.timestamp(), *fields]
        return bool(await self._call(self._script, PUT_ONCE, *args))

    async def cancel_once(self, run_key: str) -> bool:
        """Delete the unclaimed entry."""
        return bool(await self._call(self._script, CANCEL_ONCE, run_key))

    async def list_once(self, *, limit: int, before: datetime | None = None) -> list[OneOffEntry]:
        """ZRANGEBYSCORE on the fire-time index, then one pipelined HGETALL per entry."""
        check_limit(limit)
        top = f"({before.timestamp()!r}" if before is not None else "+inf"

        def run(client: Any) -> list[OneOffEntry]:
            keys = [k.decode() for k in client.zrangebyscore(self.key("so"), "-inf", top, start=0, num=limit)]
            pipe = client.pipeline(transaction=False)
            for run_key in keys:
                pipe.hgetall(self.key("so", run_key))
            found = pipe.execute() if keys else []
            return [
                _entry({b"run_key": k.encode(), **f})
                for k, f in zip(keys, found, strict=True)
                if f and b"run_id" not in f
            ]

        entries = await self._call(run)
        return [e for e in entries if before is None or e.fire_at < before]

    async def claim_once(self, run_key: str, *, run_id: str, owner: str) -> OneOffEntry | None:
        """Mark the entry claimed and write its ticket, in one script."""
        flat = await self._call(self._script, CLAIM_ONCE, run_key, run_id, owner)
        if not flat:
            return None
        return _entry({b"run_key": run_key.encode(), **_pairs(flat)})
