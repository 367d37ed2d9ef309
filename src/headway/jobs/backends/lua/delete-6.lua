--[[ delete-6.lua: remove a job that is not running, from its hash and every index.

KEYS[1..6]  ready, scheduled, running, succeeded, failed, cancelled zsets
ARGV[1]  job key prefix   ARGV[2]  job id
(a tenant's queued job is also removed from <prefix>:{queue}:rt:<tenant>)
Returns  1 if deleted, 0 if absent or running.
]]
local key = ARGV[1] .. ARGV[2]
local state = redis.call('HGET', key, 'state')
if not state or state == 'running' then return 0 end
for i = 1, 6 do redis.call('ZREM', KEYS[i], ARGV[2]) end
local ten = redis.call('HGET', key, 'ten')
if ten then redis.call('ZREM', string.sub(ARGV[1], 1, -5) .. 'rt:' .. ten, ARGV[2]) end
redis.call('DEL', key)
return 1
