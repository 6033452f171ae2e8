/**
 * The Lua scripts behind the sessions of {@link RedisStateStore}. Each operation is one script,
 * so an append is all or nothing and a read is one round trip. Keys (after the prefix):
 * `sm:<id>` the session's hash (owner, meta, seq, bytes, overflow), `sl:<id>` its log, `sc:<id>`
 * its report counters, `sb:<id>` its blocked flows, `sessions` and `so:<owner>` sorted sets of
 * live sessions by expiry (for the caps). Every key of a session gets the same idle TTL on every
 * touch, so Redis forgets them together. ARGV[1] is the prefix, ARGV[2] the session id.
 */
const TOUCH = `
local p, id = ARGV[1], ARGV[2]
local sm = p .. 'sm:' .. id
local function touch(owner, ttl, exp)
  redis.call('PEXPIRE', sm, ttl)
  redis.call('PEXPIRE', p .. 'sl:' .. id, ttl)
  redis.call('PEXPIRE', p .. 'sc:' .. id, ttl)
  redis.call('PEXPIRE', p .. 'sb:' .. id, ttl)
  redis.call('ZADD', p .. 'sessions', exp, id)
  if owner and owner ~= '' then
    local so = p .. 'so:' .. owner
    redis.call('ZADD', so, exp, id)
    redis.call('PEXPIRE', so, ttl)
  end
end
`;

/** ARGV: prefix, id, owner, meta, now, ttl, expiresAt, maxSessions, maxPerOwner. Returns {ok, created|reason, owner, meta}. */
export const OPEN_SESSION_LUA = `${TOUCH}
if redis.call('EXISTS', sm) == 1 then
  local f = redis.call('HMGET', sm, 'owner', 'meta')
  touch(f[1], ARGV[6], ARGV[7])
  return {1, 0, f[1] or '', f[2] or ''}
end
redis.call('ZREMRANGEBYSCORE', p .. 'sessions', '-inf', ARGV[5])
local total = redis.call('ZCARD', p .. 'sessions')
if total >= tonumber(ARGV[8]) then
  return {0, 'the store holds ' .. total .. ' live sessions, its limit'}
end
local owner = ARGV[3]
if owner ~= '' then
  local so = p .. 'so:' .. owner
  redis.call('ZREMRANGEBYSCORE', so, '-inf', ARGV[5])
  local owned = redis.call('ZCARD', so)
  if owned >= tonumber(ARGV[9]) then
    return {0, 'agent \`' .. owner .. '\` holds ' .. owned .. ' live sessions, its limit'}
  end
end
redis.call('HSET', sm, 'owner', owner, 'meta', ARGV[4], 'seq', 0, 'bytes', 0)
touch(owner, ARGV[6], ARGV[7])
return {1, 1, owner, ARGV[4]}
`;

/** ARGV: prefix, id, after, ttl, expiresAt. Returns nil, or {owner, meta, seq, entries}. */
export const READ_SESSION_LUA = `${TOUCH}
local f = redis.call('HMGET', sm, 'owner', 'meta', 'seq')
if not f[3] then return false end
touch(f[1], ARGV[4], ARGV[5])
local entries = {}
if tonumber(f[3]) > tonumber(ARGV[3]) then
  entries = redis.call('LRANGE', p .. 'sl:' .. id, ARGV[3], -1)
end
return {f[1], f[2], f[3], entries}
`;

/** ARGV: prefix, id, ttl, expiresAt, maxBytes, overflow entry, entries... Returns nil, or the new seq. */
export const APPEND_SESSION_LUA = `${TOUCH}
local f = redis.call('HMGET', sm, 'owner', 'seq', 'bytes', 'overflow')
if not f[2] then return false end
touch(f[1], ARGV[3], ARGV[4])
if f[4] then return tonumber(f[2]) end
local sl = p .. 'sl:' .. id
local size = 0
for i = 7, #ARGV do size = size + #ARGV[i] end
if tonumber(f[3]) + size > tonumber(ARGV[5]) then
  redis.call('RPUSH', sl, ARGV[6])
  redis.call('PEXPIRE', sl, ARGV[3])
  redis.call('HSET', sm, 'overflow', 1)
  return redis.call('HINCRBY', sm, 'seq', 1)
end
for i = 7, #ARGV do redis.call('RPUSH', sl, ARGV[i]) end
redis.call('PEXPIRE', sl, ARGV[3])
redis.call('HINCRBY', sm, 'bytes', size)
return redis.call('HINCRBY', sm, 'seq', #ARGV - 6)
`;

/** ARGV: prefix, id, ttl, expiresAt, verdict field, tool field, blocked JSON or '', blocked kept. Returns 1, or 0 when the session does not live. */
export const NOTE_SESSION_LUA = `${TOUCH}
local owner = redis.call('HGET', sm, 'owner')
if not owner then return 0 end
local sc = p .. 'sc:' .. id
redis.call('HINCRBY', sc, ARGV[5], 1)
redis.call('HINCRBY', sc, ARGV[6], 1)
if ARGV[7] ~= '' then
  local sb = p .. 'sb:' .. id
  redis.call('RPUSH', sb, ARGV[7])
  redis.call('LTRIM', sb, -tonumber(ARGV[8]), -1)
end
touch(owner, ARGV[3], ARGV[4])
return 1
`;

/** ARGV: prefix, id. */
export const END_SESSION_LUA = `${TOUCH}
local owner = redis.call('HGET', sm, 'owner')
redis.call('DEL', sm, p .. 'sl:' .. id, p .. 'sc:' .. id, p .. 'sb:' .. id)
redis.call('ZREM', p .. 'sessions', id)
if owner and owner ~= '' then redis.call('ZREM', p .. 'so:' .. owner, id) end
return 1
`;

/** KEYS[1]: the record. ARGV: expected version, value, expiresAt or ''. Returns 1 when written. */
export const PUT_RECORD_LUA = `
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', v + 1, 'value', ARGV[2])
if ARGV[3] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) else redis.call('PERSIST', KEYS[1]) end
return 1
`;
