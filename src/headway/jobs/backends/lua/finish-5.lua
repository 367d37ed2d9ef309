--[[ finish-5.lua: record how a batch of runs ended (one round trip for many acks).

A run counts only if the job is still running under the same worker and attempt;
an ack from a worker that lost its lease is ignored. When a unique job ends (not a
retry), its unique lock (<prefix>:{queue}:unique:<key>, derived from the job key prefix)
is set to expire at the end of its TTL.

KEYS[1]  running zset     KEYS[2]  scheduled zset   KEYS[3]  succeeded zset (score = finish ms)
KEYS[4]  failed zset      KEYS[5]  cancelled zset
ARGV[1]  job key prefix   ARGV[2]  worker id        ARGV[3]  N, then 6 values per run:
         id, attempt, outcome ("succeeded" | "failed" | "cancelled" | "retry"; a retry of
         a job whose cancel was requested ends it cancelled),
         result JSON (succeeded) or error text, traceback, retry delay (ms)
Returns  N integers: 1 = recorded, 0 = lease lost (nothing changed).
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local out = {}
for i = 0, tonumber(ARGV[3]) - 1 do
  local b = 4 + i * 6
  local id, outcome = ARGV[b], ARGV[b + 2]
  local key = ARGV[1] .. id
  local v = redis.call('HMGET', key, 'state', 'worker', 'att', 'cancel', 'ukey', 'uuntil')
  if v[1] == 'running' and v[2] == ARGV[2] and v[3] == ARGV[b + 1] then
    redis.call('ZREM', KEYS[1], id)
    if outcome == 'retry' and v[4] == '1' then outcome = 'cancelled' end
    if outcome == 'succeeded' then
      redis.call('HSET', key, 'state', 'succeeded', 'result', ARGV[b + 3], 'fin', now,
        'prog', 100)
      redis.call('ZADD', KEYS[3], now, id)
    elseif outcome == 'retry' then
      local run = now + tonumber(ARGV[b + 5])
      redis.call('HSET', key, 'state', 'scheduled', 'err', ARGV[b + 3], 'tb', ARGV[b + 4],
        'run', run)
      redis.call('ZADD', KEYS[2], run, id)
    elseif outcome == 'cancelled' then
      redis.call('HSET', key, 'state', 'cancelled', 'err', ARGV[b + 3], 'tb', ARGV[b + 4],
        'fin', now)
      redis.call('ZADD', KEYS[5], now, id)
    else
      redis.call('HSET', key, 'state', 'failed', 'err', ARGV[b + 3], 'tb', ARGV[b + 4],
        'fin', now)
      redis.call('ZADD', KEYS[4], now, id)
    end
    if v[5] and outcome ~= 'retry' then
      local lock = string.sub(ARGV[1], 1, -5) .. 'unique:' .. v[5]
      if redis.call('GET', lock) == id then
        redis.call('PEXPIREAT', lock, math.max(tonumber(v[6]), now + 1))
      end
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
