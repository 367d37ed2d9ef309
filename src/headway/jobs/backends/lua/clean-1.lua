--[[ clean-1.lua: delete jobs of one final state (retention and `headway jobs clean`).

Removes the jobs beyond the newest `keep` and those finished before `cutoff`
(every job of the state when both are -1), at most `limit` per call.

KEYS[1]  the state's zset (succeeded, failed or cancelled; score = finish ms)
ARGV[1]  job key prefix   ARGV[2]  keep (-1 = no count rule)
ARGV[3]  cutoff age (ms, -1 = no age rule)   ARGV[4]  limit
Returns  how many jobs were deleted (= limit: call again).
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local keep, age, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local doomed = {}
if keep < 0 and age < 0 then
  doomed = redis.call('ZRANGE', KEYS[1], 0, limit - 1)
else
  if keep >= 0 then
    local extra = redis.call('ZCARD', KEYS[1]) - keep
    if extra > 0 then doomed = redis.call('ZRANGE', KEYS[1], 0, math.min(extra, limit) - 1) end
  end
  if age >= 0 and #doomed < limit then
    local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - age),
      'LIMIT', #doomed, limit - #doomed)
    for _, id in ipairs(old) do doomed[#doomed + 1] = id end
  end
end
for _, id in ipairs(doomed) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('DEL', ARGV[1] .. id)
end
return #doomed
