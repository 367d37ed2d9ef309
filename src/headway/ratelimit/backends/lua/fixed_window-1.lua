--[[ fixed_window-1.lua: fixed window counter, the window anchored at the key's first hit.

KEYS[1]  hash {s = window start (ms since epoch), n = units counted in that window}
ARGV[1]  limit (units per window)
ARGV[2]  window length in ms
ARGV[3]  cost of this check (1 <= cost <= limit, checked by the caller)

Returns {allowed (1|0), remaining, reset_ms, retry_after_ms}:
reset_ms is the time left in the window; a denied check consumes nothing and may pass
again when the window ends. Time is Redis TIME, so every client agrees.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, period, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

local v = redis.call('HMGET', KEYS[1], 's', 'n')
local start, used = tonumber(v[1]), tonumber(v[2]) or 0
if start == nil or now >= start + period then
  start, used = now, 0
end
local reset = start + period - now

if used + cost > limit then
  return {0, limit - used, reset, reset}
end
used = used + cost
redis.call('HSET', KEYS[1], 's', start, 'n', used)
redis.call('PEXPIREAT', KEYS[1], start + period)
return {1, limit - used, reset, 0}
