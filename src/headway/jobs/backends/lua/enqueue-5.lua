--[[ enqueue-5.lua: store new jobs of one queue (a batch, in one round trip).

KEYS[1]  ready zset      <prefix>:{queue}:ready      score = (1000 - priority) * 2^41 + seq
KEYS[2]  scheduled zset  <prefix>:{queue}:scheduled  score = run time (ms)
KEYS[3]  seq counter     <prefix>:{queue}:seq        FIFO order within a priority
KEYS[4]  notify list     <prefix>:{queue}:notify     at most one token: idle workers BLPOP it
KEYS[5]  tenants set     <prefix>:{queue}:tenants    tenants that may have ready jobs
ARGV[1]  job key prefix  <prefix>:{queue}:job:       (same hash tag: same slot as KEYS)
ARGV[2]  N, the number of jobs; then 7 values per job:
         id, task, data (JSON payload), priority, max attempts, delay (ms, 0 = now),
         tenant ('' = none)
Returns  N integers: 1 = stored, 0 = a job with that id already exists (left as is).
Job hash fields: task data state pri max enq run [ten att start fin worker prog pmsg result
err tb cancel ukey uuntil] (att and prog are absent until set: readers take them as 0).
Ready jobs of a tenant wait in <prefix>:{queue}:rt:<tenant> (same scores) instead of the
ready zset, which holds the jobs without a tenant; claim-9.lua takes turns between them.
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local unit = 2199023255552
local n = tonumber(ARGV[2])
local base = string.sub(ARGV[1], 1, -5)  -- <prefix>:{queue}:
local out, ready, woke = {}, {}, false
-- One INCRBY for the batch: job i of the batch gets seq base + i (FIFO kept).
local seq = redis.call('INCRBY', KEYS[3], n) - n
for i = 0, n - 1 do
  local b = 3 + i * 7
  local id, pri, delay, ten = ARGV[b], tonumber(ARGV[b + 3]), tonumber(ARGV[b + 5]), ARGV[b + 6]
  local key = ARGV[1] .. id
  if redis.call('EXISTS', key) == 1 then
    out[#out + 1] = 0
  else
    local run, state = now + delay, 'queued'
    if delay > 0 then state = 'scheduled' end
    redis.call('HSET', key, 'task', ARGV[b + 1], 'data', ARGV[b + 2], 'state', state,
      'pri', pri, 'max', ARGV[b + 4], 'enq', now, 'run', run)
    if ten ~= '' then redis.call('HSET', key, 'ten', ten) end
    if delay > 0 then
      redis.call('ZADD', KEYS[2], run, id)
    else
      local zset = ten == '' and '' or base .. 'rt:' .. ten
      local batch = ready[zset]
      if not batch then batch = {}; ready[zset] = batch end
      batch[#batch + 1] = (1000 - pri) * unit + (seq + i + 1) % unit
      batch[#batch + 1] = id
    end
    out[#out + 1] = 1
  end
end
-- One ZADD per zset (ARGV holds at most MAX_BATCH = 500 jobs: unpack stays small).
for zset, batch in pairs(ready) do
  if zset == '' then
    redis.call('ZADD', KEYS[1], unpack(batch))
  else
    redis.call('ZADD', zset, unpack(batch))
    redis.call('SADD', KEYS[5], string.sub(zset, #base + 4))
  end
  woke = true
end
-- Wake one idle worker (it wakes the next if it leaves jobs behind: see claim-9.lua).
if woke and redis.call('LLEN', KEYS[4]) == 0 then redis.call('LPUSH', KEYS[4], 1) end
return out
