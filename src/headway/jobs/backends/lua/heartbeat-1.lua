--[[ heartbeat-1.lua: extend the leases a worker still holds.

KEYS[1]  running zset (score = lease end ms)
ARGV[1]  job key prefix   ARGV[2]  worker id   ARGV[3]  lease (ms)
ARGV[4..] pairs: job id, attempt (the lease token)
Returns  {lost, cancel}: the ids whose lease the worker no longer holds (expired, taken
         over, finished), and the ids it holds whose cancellation was requested.
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local lost, cancel = {}, {}
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  local v = redis.call('HMGET', ARGV[1] .. id, 'state', 'worker', 'att', 'cancel')
  if v[1] == 'running' and v[2] == ARGV[2] and v[3] == ARGV[i + 1] then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[3]), id)
    if v[4] == '1' then cancel[#cancel + 1] = id end
  else
    lost[#lost + 1] = id
  end
end
return {lost, cancel}
