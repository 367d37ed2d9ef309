--[[ release-5.lua: put running jobs back in the queue, giving their attempt back
(a worker stopping gracefully with jobs it could not finish in time); a job whose
cancel was requested is cancelled instead.

KEYS[1]  running zset     KEYS[2]  ready zset       KEYS[3]  seq counter
KEYS[4]  cancelled zset   KEYS[5]  tenants set (a tenant's job goes back to its rt: zset)
ARGV[1]  job key prefix   ARGV[2]  worker id
ARGV[3..] pairs: job id, attempt (the lease token)
Returns  how many jobs were put back.
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local n = 0
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local key = ARGV[1] .. id
  local v = redis.call('HMGET', key, 'state', 'worker', 'att', 'pri', 'cancel', 'ten')
  if v[1] == 'running' and v[2] == ARGV[2] and v[3] == ARGV[i + 1] then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HINCRBY', key, 'att', -1)
    if v[5] == '1' then
      redis.call('HSET', key, 'state', 'cancelled', 'fin', now, 'worker', '')
      redis.call('ZADD', KEYS[4], now, id)
    else
      redis.call('HSET', key, 'state', 'queued', 'run', now, 'worker', '')
      local seq = redis.call('INCR', KEYS[3]) % 2199023255552
      local score = (1000 - tonumber(v[4])) * 2199023255552 + seq
      if v[6] and v[6] ~= '' then
        redis.call('ZADD', string.sub(ARGV[1], 1, -5) .. 'rt:' .. v[6], score, id)
        redis.call('SADD', KEYS[5], v[6])
      else
        redis.call('ZADD', KEYS[2], score, id)
      end
    end
    n = n + 1
  end
end
return n
