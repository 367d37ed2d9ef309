--[[ cancel-3.lua: cancel a job that has not started (queued or scheduled), or record a
cancel request on a running one (its worker sees it at its next heartbeat).

KEYS[1]  ready zset   KEYS[2]  scheduled zset   KEYS[3]  cancelled zset (score = finish ms)
ARGV[1]  job key prefix   ARGV[2]  job id
(a tenant's queued job is also removed from <prefix>:{queue}:rt:<tenant>)
Returns  1 if cancelled (or requested), 0 if absent or finished.
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local key = ARGV[1] .. ARGV[2]
local state = redis.call('HGET', key, 'state')
if state == 'running' then
  redis.call('HSET', key, 'cancel', 1)
  return 1
end
if state ~= 'queued' and state ~= 'scheduled' then return 0 end
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
local ten = redis.call('HGET', key, 'ten')
if ten then redis.call('ZREM', string.sub(ARGV[1], 1, -5) .. 'rt:' .. ten, ARGV[2]) end
redis.call('HSET', key, 'state', 'cancelled', 'fin', now)
redis.call('ZADD', KEYS[3], now, ARGV[2])
return 1
