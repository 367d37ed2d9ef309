--[[ enqueue_unique-5.lua: store new jobs of one queue, some with a unique key.

Like enqueue-5.lua, plus: a job with a unique key is not stored while the key's holder
(the job named by <prefix>:{queue}:unique:<key>) is queued, scheduled or running, or
before its unique TTL ends; the holder's id is returned instead. The lock key is
rewritten for each job stored; finish-5.lua lets it expire at the end of the TTL once
its job has finished. A stale lock (holder finished past its TTL, or deleted) is taken.

KEYS[1]  ready zset   KEYS[2]  scheduled zset   KEYS[3]  seq counter   KEYS[4]  notify list
KEYS[5]  tenants set
ARGV[1]  job key prefix  <prefix>:{queue}:job:
ARGV[2]  unique key prefix  <prefix>:{queue}:unique:   (same hash tag: same slot)
ARGV[3]  N; then 9 values per job: id, task, data, priority, max attempts, delay (ms),
         tenant ('' = none), unique key ('' = none), unique TTL (ms)
Returns  N values: 1 = stored, 0 = a job with that id exists, else the holder's id.
Job hash fields as in enqueue-5.lua, plus ukey and uuntil (ms) for unique jobs.
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local unit = 2199023255552
local n = tonumber(ARGV[3])
local out, woke = {}, false
local base = string.sub(ARGV[1], 1, -5)  -- <prefix>:{queue}:

local function holder(ukey)
  local id = redis.call('GET', ARGV[2] .. ukey)
  if not id then return nil end
  local v = redis.call('HMGET', ARGV[1] .. id, 'state', 'uuntil')
  if v[1] == 'queued' or v[1] == 'scheduled' or v[1] == 'running' then return id end
  if v[1] and tonumber(v[2] or 0) > now then return id end
  return nil
end

for i = 0, n - 1 do
  local b = 4 + i * 9
  local id, pri, delay = ARGV[b], tonumber(ARGV[b + 3]), tonumber(ARGV[b + 5])
  local ten, ukey, ttl = ARGV[b + 6], ARGV[b + 7], tonumber(ARGV[b + 8])
  local key = ARGV[1] .. id
  local held = nil
  if ukey ~= '' then held = holder(ukey) end
  if held then
    out[#out + 1] = held
  elseif redis.call('EXISTS', key) == 1 then
    out[#out + 1] = 0
  else
    local run, state = now + delay, 'queued'
    if delay > 0 then state = 'scheduled' end
    redis.call('HSET', key, 'task', ARGV[b + 1], 'data', ARGV[b + 2], 'state', state,
      'pri', pri, 'max', ARGV[b + 4], 'enq', now, 'run', run)
    if ten ~= '' then redis.call('HSET', key, 'ten', ten) end
    if ukey ~= '' then
      redis.call('HSET', key, 'ukey', ukey, 'uuntil', now + ttl)
      redis.call('SET', ARGV[2] .. ukey, id)
    end
    if delay > 0 then
      redis.call('ZADD', KEYS[2], run, id)
    else
      local seq = redis.call('INCR', KEYS[3]) % unit
      if ten == '' then
        redis.call('ZADD', KEYS[1], (1000 - pri) * unit + seq, id)
      else
        redis.call('ZADD', base .. 'rt:' .. ten, (1000 - pri) * unit + seq, id)
        redis.call('SADD', KEYS[5], ten)
      end
      woke = true
    end
    out[#out + 1] = 1
  end
end
if woke and redis.call('LLEN', KEYS[4]) == 0 then redis.call('LPUSH', KEYS[4], 1) end
return out
