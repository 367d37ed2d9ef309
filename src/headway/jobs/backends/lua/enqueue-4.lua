--[[ enqueue-4.lua: store new jobs of one queue (a batch, in one round trip).

KEYS[1]  ready zset      <prefix>:{queue}:ready      score = (1000 - priority) * 2^41 + seq
KEYS[2]  scheduled zset  <prefix>:{queue}:scheduled  score = run time (ms)
KEYS[3]  seq counter     <prefix>:{queue}:seq        FIFO order within a priority
KEYS[4]  notify list     <prefix>:{queue}:notify     at most one token: idle workers BLPOP it
ARGV[1]  job key prefix  <prefix>:{queue}:job:       (same hash tag: same slot as KEYS)
ARGV[2]  N, the number of jobs; then 6 values per job:
         id, task, data (JSON payload), priority, max attempts, delay (ms, 0 = now)
Returns  N integers: 1 = stored, 0 = a job with that id already exists (left as is).
Job hash fields: task data state pri max enq run [att start fin worker prog pmsg result err tb]
(att and prog are absent until set: readers take them as 0).
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local unit = 2199023255552
local n = tonumber(ARGV[2])
local out, ready = {}, {}
-- One INCRBY for the batch: job i of the batch gets seq base + i (FIFO kept).
local seq = redis.call('INCRBY', KEYS[3], n) - n
for i = 0, n - 1 do
  local b = 3 + i * 6
  local id, pri, delay = ARGV[b], tonumber(ARGV[b + 3]), tonumber(ARGV[b + 5])
  local key = ARGV[1] .. id
  if redis.call('EXISTS', key) == 1 then
    out[#out + 1] = 0
  else
    local run, state = now + delay, 'queued'
    if delay > 0 then state = 'scheduled' end
    redis.call('HSET', key, 'task', ARGV[b + 1], 'data', ARGV[b + 2], 'state', state,
      'pri', pri, 'max', ARGV[b + 4], 'enq', now, 'run', run)
    if delay > 0 then
      redis.call('ZADD', KEYS[2], run, id)
    else
      ready[#ready + 1] = (1000 - pri) * unit + (seq + i + 1) % unit
      ready[#ready + 1] = id
    end
    out[#out + 1] = 1
  end
end
if #ready > 0 then
  -- One ZADD for the batch (ARGV holds at most MAX_BATCH = 500 jobs: unpack stays small).
  redis.call('ZADD', KEYS[1], unpack(ready))
  -- Wake one idle worker (it wakes the next if it leaves jobs behind: see claim-7.lua).
  if redis.call('LLEN', KEYS[4]) == 0 then redis.call('LPUSH', KEYS[4], 1) end
end
return out
