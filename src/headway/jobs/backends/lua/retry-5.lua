--[[ retry-5.lua: requeue jobs from the failed store (or cancelled ones), attempts reset.

KEYS[1]  failed zset      KEYS[2]  cancelled zset   KEYS[3]  ready zset   KEYS[4]  seq counter
KEYS[5]  tenants set (a tenant's job goes back to its rt: zset)
ARGV[1]  job key prefix   ARGV[2]  "all" (every failed job, at most ARGV[3] per call)
         or "ids" followed by ARGV[3..] = the job ids (failed or cancelled)
Returns  how many jobs were requeued.
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ids
if ARGV[2] == 'all' then
  ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
else
  ids = {}
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local n = 0
for _, id in ipairs(ids) do
  local key = ARGV[1] .. id
  local removed = redis.call('ZREM', KEYS[1], id) + redis.call('ZREM', KEYS[2], id)
  local v = redis.call('HMGET', key, 'pri', 'ten')
  local pri = v[1]
  if removed > 0 and pri then
    redis.call('HSET', key, 'state', 'queued', 'att', 0, 'run', now, 'fin', '', 'worker', '',
      'cancel', '')
    local seq = redis.call('INCR', KEYS[4]) % 2199023255552
    local score = (1000 - tonumber(pri)) * 2199023255552 + seq
    if v[2] and v[2] ~= '' then
      redis.call('ZADD', string.sub(ARGV[1], 1, -5) .. 'rt:' .. v[2], score, id)
      redis.call('SADD', KEYS[5], v[2])
    else
      redis.call('ZADD', KEYS[3], score, id)
    end
    n = n + 1
  end
end
return n
