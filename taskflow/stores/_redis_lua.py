"""The Lua scripts of `RedisStore`: every multi-key operation runs as one script, atomic on the server.

Key layout under the store's prefix `P` (every key starts with `P:`, so one prefix is one namespace):

    P:t:<id>          hash: the whole record (columns as in SQLite; a None column is an absent field)
    P:i:all           lex sorted set of "<created_at>|<id>" (created_at is fixed-width UTC text, so
    P:i:s:<status>      lexicographic order is (created_at, task_id) order); one per status,
    P:i:f:<func>        one per function,
    P:i:g:<n>:<k><v>    one per tag (n = length of the tag's key, so key and value cannot run together)
    P:i:end           sorted set of task ids by end time (Unix seconds): retention and `summary()`
    P:o:<owner>       set of the owner's PENDING/RUNNING task ids; P:owners the owners that have any
    P:h:<instance>    heartbeat: exists while the instance is alive (the server expires it)
    P:c               hash status -> count; P:cf hash "<status>|<func>" -> count
    P:k:<key>         idempotency key -> task id; P:kt:<id> the reverse; P:i:held lex set of the
                      "<created_at>|<id>" of SUCCESS tasks holding a key (`held_keys()`)
    P:feed            pub/sub channel: one message per write batch, "<owner>\n<id>\n<id>..." (the change feed)
    P:keys            pub/sub channel of idempotency keys: "<holder id>\n<key>" when a key is claimed,
                      "\n<key>" when its holder fails, is cancelled or interrupted, or is deleted
                      (the key feed)

Scripts take the prefix as ARGV[1]; they build the keys they touch, so they run on a single Redis server
(not on Redis Cluster). Every script is deterministic given its arguments (times come from the caller).
"""

from __future__ import annotations

# Removes a record from every index and counter, releases its key (and says so on the key feed) and
# deletes its hash. `old` is HMGET of the _OLD fields.
_LIB = r"""
local P = ARGV[1]
local OLD = {'status', 'func_name', 'created_at', 'tags', 'owner', 'end_time'}
local function unindex(id, old)
  local member = old[3] .. '|' .. id
  redis.call('ZREM', P .. ':i:all', member)
  redis.call('ZREM', P .. ':i:s:' .. old[1], member)
  redis.call('ZREM', P .. ':i:f:' .. old[2], member)
  redis.call('ZREM', P .. ':i:held', member)
  if old[4] ~= '{}' then
    for k, v in pairs(cjson.decode(old[4])) do
      redis.call('ZREM', P .. ':i:g:' .. #k .. ':' .. k .. v, member)
    end
  end
  redis.call('SREM', P .. ':o:' .. old[5], id)
  redis.call('ZREM', P .. ':i:end', id)
  redis.call('HINCRBY', P .. ':c', old[1], -1)
  redis.call('HINCRBY', P .. ':cf', old[1] .. '|' .. old[2], -1)
end
local function remove(id)
  local tkey = P .. ':t:' .. id
  local old = redis.call('HMGET', tkey, unpack(OLD))
  if not old[1] then return 0 end
  unindex(id, old)
  local key = redis.call('GET', P .. ':kt:' .. id)
  if key then
    if redis.call('GET', P .. ':k:' .. key) == id then
      redis.call('DEL', P .. ':k:' .. key)
      redis.call('PUBLISH', P .. ':keys', '\n' .. key)  -- released: every instance's key mirror forgets it
    end
    redis.call('DEL', P .. ':kt:' .. id)
  end
  redis.call('DEL', tkey)
  return 1
end
local TERMINAL = {success = true, failed = true, cancelled = true, interrupted = true, rejected = true}
local RELEASES = {failed = true, cancelled = true, interrupted = true, rejected = true}
"""

WRITE = (
    _LIB
    + r"""
-- ARGV: prefix, owner, then per record: id, status, func, created, end score ('' if none), tags json,
-- field count n, then n field/value pairs (the whole hash, the owner among them).
local i = 3
local n = #ARGV
local written = {}
while i <= n do
  local id, status, func, created = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local ends, tags, nf = ARGV[i + 4], ARGV[i + 5], tonumber(ARGV[i + 6])
  local tkey = P .. ':t:' .. id
  local old = redis.call('HMGET', tkey, unpack(OLD))
  if old[1] then unindex(id, old) end
  redis.call('DEL', tkey)
  local fields = {}
  local owner
  for f = 0, nf - 1 do
    local name, value = ARGV[i + 7 + 2 * f], ARGV[i + 8 + 2 * f]
    fields[#fields + 1] = name
    fields[#fields + 1] = value
    if name == 'owner' then owner = value end
  end
  redis.call('HSET', tkey, unpack(fields))
  local member = created .. '|' .. id
  redis.call('ZADD', P .. ':i:all', 0, member)
  redis.call('ZADD', P .. ':i:s:' .. status, 0, member)
  redis.call('ZADD', P .. ':i:f:' .. func, 0, member)
  if tags ~= '{}' then
    for k, v in pairs(cjson.decode(tags)) do
      redis.call('ZADD', P .. ':i:g:' .. #k .. ':' .. k .. v, 0, member)
    end
  end
  if TERMINAL[status] then
    if ends ~= '' then redis.call('ZADD', P .. ':i:end', ends, id) end
  else
    redis.call('SADD', P .. ':o:' .. owner, id)
    redis.call('SADD', P .. ':owners', owner)
  end
  if status == 'success' or RELEASES[status] then
    local key = redis.call('GET', P .. ':kt:' .. id)
    if key and redis.call('GET', P .. ':k:' .. key) == id then
      if status == 'success' then
        redis.call('ZADD', P .. ':i:held', 0, member)
      elseif old[1] ~= status then
        redis.call('PUBLISH', P .. ':keys', '\n' .. key)  -- released: the key feed forgets it
      end
    end
  end
  redis.call('HINCRBY', P .. ':c', status, 1)
  redis.call('HINCRBY', P .. ':cf', status .. '|' .. func, 1)
  written[#written + 1] = id
  i = i + 7 + 2 * nf
end
redis.call('PUBLISH', P .. ':feed', ARGV[2] .. '\n' .. table.concat(written, '\n'))
return 1
"""
)

CLAIM_KEY = (
    _LIB
    + r"""
-- ARGV: prefix, key, task id. Returns the holder's id, or false when the key is now bound to the task.
local key, id = ARGV[2], ARGV[3]
local holder = redis.call('GET', P .. ':k:' .. key)
if holder and holder ~= id then
  local status = redis.call('HGET', P .. ':t:' .. holder, 'status')
  if not status or not RELEASES[status] then
    return holder
  end
end
redis.call('SET', P .. ':k:' .. key, id)
redis.call('SET', P .. ':kt:' .. id, key)
local row = redis.call('HMGET', P .. ':t:' .. id, 'status', 'created_at')
if row[1] == 'success' then redis.call('ZADD', P .. ':i:held', 0, row[2] .. '|' .. id) end
redis.call('PUBLISH', P .. ':keys', id .. '\n' .. key)
return false
"""
)

CLAIM_ORPHANS = (
    _LIB
    + r"""
-- ARGV: prefix, claiming instance. Returns {id1, previous owner 1, id2, ...}.
local me = ARGV[2]
local out = {}
for _, owner in ipairs(redis.call('SMEMBERS', P .. ':owners')) do
  local set = P .. ':o:' .. owner
  if owner ~= me and redis.call('EXISTS', P .. ':h:' .. owner) == 0 then
    for _, id in ipairs(redis.call('SMEMBERS', set)) do
      redis.call('HSET', P .. ':t:' .. id, 'owner', me)
      redis.call('SADD', P .. ':o:' .. me, id)
      out[#out + 1] = id
      out[#out + 1] = owner
    end
    redis.call('DEL', set)
    if #out > 0 then redis.call('SADD', P .. ':owners', me) end
  end
  if redis.call('EXISTS', set) == 0 then redis.call('SREM', P .. ':owners', owner) end
end
return out
"""
)

DELETE = (
    _LIB
    + r"""
-- ARGV: prefix, ids... Deletes the terminal ones; returns how many.
local deleted = 0
for j = 2, #ARGV do
  local status = redis.call('HGET', P .. ':t:' .. ARGV[j], 'status')
  if status and TERMINAL[status] then deleted = deleted + remove(ARGV[j]) end
end
return deleted
"""
)

DELETE_BEFORE = (
    _LIB
    + r"""
-- ARGV: prefix, cutoff score, cutoff text, batch size. Returns {deleted, scanned}.
local ids = redis.call('ZRANGEBYSCORE', P .. ':i:end', '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))
local deleted = 0
for _, id in ipairs(ids) do
  local row = redis.call('HMGET', P .. ':t:' .. id, 'status', 'end_time')
  if not row[1] then
    redis.call('ZREM', P .. ':i:end', id)
  elseif TERMINAL[row[1]] and row[2] and row[2] < ARGV[3] then
    deleted = deleted + remove(id)
  end
end
return {deleted, #ids}
"""
)
