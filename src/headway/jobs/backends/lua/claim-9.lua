--[[ claim-9.lua: atomically take up to N ready jobs of one queue for a worker.

First makes due scheduled jobs ready and puts back running jobs whose lease expired
(or fails them when they used their last attempt, or cancels them when a cancel was
requested), then, unless the queue is paused, pops up to N ready jobs and marks them
running under a lease. Without tenants that is the N best of the ready zset. With
tenants (jobs enqueued with one wait in <prefix>:{queue}:rt:<tenant>), the sources (the
ready zset for jobs without a tenant, and each tenant's zset) take turns: in order after
ARGV[6], each gives up to ceil(N / sources) of its best, then what is left of N is taken
from the sources in the same order.

KEYS[1]  ready zset       KEYS[2]  scheduled zset   KEYS[3]  running zset (score = lease end ms)
KEYS[4]  paused flag      KEYS[5]  seq counter      KEYS[6]  failed zset (score = finish ms)
KEYS[7]  notify list (one wake-up token; pushed again when ready jobs are left behind)
KEYS[8]  cancelled zset (score = finish ms)         KEYS[9]  tenants set
ARGV[1]  job key prefix   ARGV[2]  worker id        ARGV[3]  N   ARGV[4]  lease (ms)
ARGV[5]  error text recorded for a job that lost its lease after its last attempt
ARGV[6]  the tenant the worker's previous claim ended with ('' = none)
ARGV[7]  rate limit: starts per period in the queue (-1 = none)   ARGV[8]  period (ms)
ARGV[9]  rate limit: starts per period per tenant (-1 = none; jobs without one share '')
         Starts are counted in <prefix>:{queue}:starts and :starts:<tenant> (zsets of
         the last period's starts); a tenant gives no more than its limit leaves.
Returns  a flat array: the tenant this claim ended with, then 4 values per claimed job:
         id, data, attempt, max attempts.
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local prefix, unit = ARGV[1], 2199023255552
local base = string.sub(prefix, 1, -5)  -- <prefix>:{queue}:

local function make_ready(id, key)
  local v = redis.call('HMGET', key, 'pri', 'ten')
  local seq = redis.call('INCR', KEYS[5]) % unit
  redis.call('HSET', key, 'state', 'queued', 'run', now, 'worker', '')
  if v[2] and v[2] ~= '' then
    redis.call('ZADD', base .. 'rt:' .. v[2], (1000 - tonumber(v[1])) * unit + seq, id)
    redis.call('SADD', KEYS[9], v[2])
  else
    redis.call('ZADD', KEYS[1], (1000 - tonumber(v[1])) * unit + seq, id)
  end
end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', KEYS[2], id)
  if redis.call('EXISTS', prefix .. id) == 1 then make_ready(id, prefix .. id) end
end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. now, 'LIMIT', 0, 1000)) do
  local key = prefix .. id
  redis.call('ZREM', KEYS[3], id)
  local v = redis.call('HMGET', key, 'att', 'max', 'cancel')
  if v[1] then
    if v[3] == '1' then
      redis.call('HSET', key, 'state', 'cancelled', 'fin', now, 'worker', '')
      redis.call('ZADD', KEYS[8], now, id)
    elseif tonumber(v[1]) >= tonumber(v[2]) then
      redis.call('HSET', key, 'state', 'failed', 'err', ARGV[5], 'fin', now, 'worker', '')
      redis.call('ZADD', KEYS[6], now, id)
    else
      make_ready(id, key)
    end
  end
end

if redis.call('EXISTS', KEYS[4]) == 1 then return {ARGV[6]} end

local n = tonumber(ARGV[3])
local popped, last = {}, ARGV[6]
local q_limit, period, t_limit = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local starts = base .. 'starts'
if q_limit >= 0 then
  redis.call('ZREMRANGEBYSCORE', starts, '-inf', now - period)
  n = math.min(n, q_limit - redis.call('ZCARD', starts))
  if n <= 0 then return {last} end
end
local function room(name)  -- what the tenant's own limit leaves (n when none)
  if t_limit < 0 then return n end
  local key = starts .. ':' .. name
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
  return t_limit - redis.call('ZCARD', key)
end
local source = {}  -- job id -> tenant ('' = none), for the start marks
local tenants = redis.call('SMEMBERS', KEYS[9])
if #tenants == 0 and t_limit < 0 then
  popped = redis.call('ZPOPMIN', KEYS[1], n)
else
  -- Sources in turn after ARGV[6]: tenants sorted; '' (no tenant) sorts first.
  table.sort(tenants)
  local names = {}
  if redis.call('EXISTS', KEYS[1]) == 1 then names[1] = '' end
  for _, ten in ipairs(tenants) do names[#names + 1] = ten end
  local order = {}
  for _, name in ipairs(names) do if name > ARGV[6] then order[#order + 1] = name end end
  for _, name in ipairs(names) do if name <= ARGV[6] then order[#order + 1] = name end end
  local per = math.ceil(n / math.max(#order, 1))
  local left = {}
  for _, name in ipairs(order) do left[name] = room(name) end
  for pass = 1, 2 do
    for _, name in ipairs(order) do
      local want = math.min(n - #popped / 2, left[name])
      if pass == 1 then want = math.min(per, want) end
      if want > 0 then
        local zset = name == '' and KEYS[1] or base .. 'rt:' .. name
        local got = redis.call('ZPOPMIN', zset, want)
        left[name] = left[name] - #got / 2
        for i = 1, #got do popped[#popped + 1] = got[i] end
        for i = 1, #got, 2 do source[got[i]] = name end
        if #got > 0 and pass == 1 then last = name end
        if name ~= '' and redis.call('EXISTS', zset) == 0 then
          redis.call('SREM', KEYS[9], name)
        end
      end
    end
  end
end

local out = {last}
local lease_end = now + tonumber(ARGV[4])
for i = 1, #popped, 2 do
  local id = popped[i]
  local key = prefix .. id
  local v = redis.call('HMGET', key, 'data', 'max')
  if v[1] then
    local attempt = redis.call('HINCRBY', key, 'att', 1)
    redis.call('HSET', key, 'state', 'running', 'worker', ARGV[2], 'start', now)
    redis.call('ZADD', KEYS[3], lease_end, id)
    out[#out + 1] = id
    out[#out + 1] = v[1]
    out[#out + 1] = attempt
    out[#out + 1] = tonumber(v[2])
    if q_limit >= 0 or t_limit >= 0 then  -- count the start (member: id and attempt)
      local mark = id .. ':' .. attempt
      redis.call('ZADD', starts, now, mark)
      redis.call('PEXPIRE', starts, period)
      if t_limit >= 0 then
        local key = starts .. ':' .. (source[id] or '')
        redis.call('ZADD', key, now, mark)
        redis.call('PEXPIRE', key, period)
      end
    end
  end
end
-- Jobs left behind: pass the wake-up on to another idle worker.
if #popped > 0 and redis.call('LLEN', KEYS[7]) == 0 and
    (redis.call('EXISTS', KEYS[1]) == 1 or redis.call('SCARD', KEYS[9]) > 0) then
  redis.call('LPUSH', KEYS[7], 1)
end
return out
