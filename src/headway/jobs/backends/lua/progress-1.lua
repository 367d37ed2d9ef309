--[[ progress-1.lua: record a running job's progress.

KEYS[1]  the job hash
ARGV[1]  attempt (lease token)   ARGV[2]  progress 0-100   ARGV[3]  message ('' = none)
Returns  1 if recorded, 0 if the job is not running under that attempt.
]]
local v = redis.call('HMGET', KEYS[1], 'state', 'att')
if v[1] ~= 'running' or v[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'prog', ARGV[2], 'pmsg', ARGV[3])
return 1
