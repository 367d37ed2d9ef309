--[[ sliding_log-1.lua: exact sliding log, one sorted-set entry per admitted unit.

Exact at any instant, but its memory grows with the limit: meant for small limits
(login attempts, uploads). Members are "<ms>:<n>", unique because within one
millisecond nothing expires and the cardinality only grows.

KEYS[1]  sorted set: score = admission time (ms)
ARGV[1]  limit
ARGV[2]  window length in ms
ARGV[3]  cost (1 <= cost <= limit)

Returns {allowed (1|0), remaining, reset_ms, retry_after_ms}: reset_ms is when the
oldest entry leaves the window; retry_after_ms is when enough entries have left.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, period, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
local n = redis.call('ZCARD', KEYS[1])

if n + cost > limit then
  local nth = redis.call('ZRANGE', KEYS[1], n + cost - limit - 1, n + cost - limit - 1, 'WITHSCORES')
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local retry = tonumber(nth[2]) + period - now
  return {0, limit - n, tonumber(oldest[2]) + period - now, math.max(1, retry)}
end
for i = 1, cost do
  redis.call('ZADD', KEYS[1], now, now .. ':' .. (n + i))
end
redis.call('PEXPIRE', KEYS[1], period)
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {1, limit - n - cost, tonumber(oldest[2]) + period - now, 0}
