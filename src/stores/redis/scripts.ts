/**
 * The Lua scripts behind {@link RedisStateStore}. Each deciding operation is one script, which
 * Redis runs without interleaving anything else, so replicas never over-count or over-spend.
 * Numbers that must stay exact (times, cut-offs) are passed in and returned as strings: Lua turns
 * numbers into strings with 14 significant digits.
 */

/**
 * Sliding windows and totals, all buckets of one call at once.
 * KEYS: one per bucket (a sorted set of call times for a window, a counter for a total).
 * ARGV: dry ("1" to only check), now, member, then per bucket: limit, windowMs, cutoff, ttlMs.
 * Returns a flat list of trips: bucket index (1-based), count, oldest score ("" when none).
 */
export const CONSUME_LUA = `
local dry = ARGV[1] == '1'
local now = ARGV[2]
local member = ARGV[3]
local trips = {}
for i = 1, #KEYS do
  local base = 4 * i
  local limit = tonumber(ARGV[base])
  local window = tonumber(ARGV[base + 1])
  local count
  local oldest = ''
  if window > 0 then
    local cutoff = ARGV[base + 2]
    if dry then
      count = redis.call('ZCOUNT', KEYS[i], '(' .. cutoff, '+inf')
    else
      redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', cutoff)
      count = redis.call('ZCARD', KEYS[i])
    end
    if count >= limit and count > 0 then
      local first = redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. cutoff, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
      oldest = first[2]
    end
  else
    count = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
  if count >= limit then
    trips[#trips + 1] = i
    trips[#trips + 1] = count
    trips[#trips + 1] = oldest
  end
end
if dry or #trips > 0 then return trips end
for i = 1, #KEYS do
  local base = 4 * i
  if tonumber(ARGV[base + 1]) > 0 then
    redis.call('ZADD', KEYS[i], now, member)
    redis.call('PEXPIRE', KEYS[i], ARGV[base + 3])
  else
    redis.call('INCR', KEYS[i])
  end
end
return trips
`;

/**
 * KEYS[1]: the spend counter in micro-units. ARGV: amount, max (integer micro-units).
 * Returns {1, total} when spent, {0, total} when refused.
 */
export const SPEND_LUA = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if current + amount > tonumber(ARGV[2]) then return {0, current} end
return {1, redis.call('INCRBY', KEYS[1], ARGV[1])}
`;

/**
 * Stores an approval: its immutable part as JSON, the fields that change on their own.
 * KEYS: approval hash, index of all approvals, index of approvals by call hash.
 * ARGV: id, createdAt, json, status, expiresAt, callHash, decidedAt, decidedBy, decisionReason,
 * key prefix (to drop the id from an old call-hash index when an approval is replaced).
 */
export const PUT_APPROVAL_LUA = `
local previous = redis.call('HGET', KEYS[1], 'callHash')
if previous and previous ~= ARGV[6] then redis.call('ZREM', ARGV[10] .. 'ah:' .. previous, ARGV[1]) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'json', ARGV[3], 'status', ARGV[4], 'expiresAt', ARGV[5], 'callHash', ARGV[6])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'decidedAt', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'decidedBy', ARGV[8]) end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'decisionReason', ARGV[9]) end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
`;

/**
 * pending -> approved | denied, unless expired (then -> expired).
 * KEYS[1]: approval hash. ARGV: status, by, reason, has reason ("1"/"0"), now.
 * Returns the hash's fields after the decision, or false when it was not pending.
 */
export const DECIDE_APPROVAL_LUA = `
local fields = redis.call('HMGET', KEYS[1], 'status', 'expiresAt')
if fields[1] ~= 'pending' then return false end
if tonumber(ARGV[5]) >= tonumber(fields[2]) then
  redis.call('HSET', KEYS[1], 'status', 'expired')
  return false
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'decidedAt', ARGV[5], 'decidedBy', ARGV[2])
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'decisionReason', ARGV[3]) end
return redis.call('HGETALL', KEYS[1])
`;

/**
 * approved -> used, once: the oldest approved, unexpired approval for one call hash.
 * KEYS[1]: index of approvals by that call hash. ARGV: now, key prefix.
 * Approvals found expired become expired; finished ones leave the index.
 * Returns the used approval's fields, or false.
 */
export const USE_APPROVAL_LUA = `
local now = tonumber(ARGV[1])
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do
  local key = ARGV[2] .. 'a:' .. id
  local fields = redis.call('HMGET', key, 'status', 'expiresAt')
  local status = fields[1]
  if status == 'approved' then
    if now >= tonumber(fields[2]) then
      redis.call('HSET', key, 'status', 'expired')
      redis.call('ZREM', KEYS[1], id)
    else
      redis.call('HSET', key, 'status', 'used')
      redis.call('ZREM', KEYS[1], id)
      return redis.call('HGETALL', key)
    end
  elseif status ~= 'pending' then
    redis.call('ZREM', KEYS[1], id)
  end
end
return false
`;

/**
 * Expires due approvals and forgets finished ones past retention.
 * KEYS[1]: index of all approvals. ARGV: now, key prefix, forget-before time.
 * Returns the fields of each approval it expired.
 */
export const EXPIRE_APPROVALS_LUA = `
local now = tonumber(ARGV[1])
local forget = tonumber(ARGV[3])
local out = {}
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do
  local key = ARGV[2] .. 'a:' .. id
  local fields = redis.call('HMGET', key, 'status', 'expiresAt', 'callHash')
  local status = fields[1]
  if not status then
    redis.call('ZREM', KEYS[1], id)
  elseif (status == 'pending' or status == 'approved') and now >= tonumber(fields[2]) then
    redis.call('HSET', key, 'status', 'expired')
    out[#out + 1] = redis.call('HGETALL', key)
  elseif status ~= 'pending' and status ~= 'approved' and tonumber(fields[2]) <= forget then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', ARGV[2] .. 'ah:' .. fields[3], id)
  end
end
return out
`;
