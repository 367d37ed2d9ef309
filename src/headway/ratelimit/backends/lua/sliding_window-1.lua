--[[ sliding_window-1.lua: weighted two-window counter (the "sliding window counter").

The count of the previous window is weighted by the share of it that still overlaps the
sliding window ending now: used = prev * (period - elapsed) / period + cur. Windows are
anchored at the key's first hit and follow each other every `period` ms.

KEYS[1]  hash {s = current window start (ms), c = units in it, p = units in the previous}
ARGV[1]  limit
ARGV[2]  window length in ms
ARGV[3]  cost (1 <= cost <= limit)

Returns {allowed (1|0), remaining, reset_ms, retry_after_ms}: reset_ms is the time left
in the current window; retry_after_ms is when enough of the weighted count has decayed
for this cost to pass.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, period, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

local v = redis.call('HMGET', KEYS[1], 's', 'c', 'p')
local start, cur, prev = tonumber(v[1]), tonumber(v[2]) or 0, tonumber(v[3]) or 0
if start == nil then
  start, cur, prev = now, 0, 0
elseif now >= start + period then
  local k = math.floor((now - start) / period)
  if k == 1 then prev = cur else prev = 0 end
  cur, start = 0, start + k * period
end
local elapsed = now - start
local used = prev * (period - elapsed) / period + cur

if used + cost > limit then
  local retry
  if cur + cost > limit then
    -- wait for the next window, then for the (then previous) count to decay enough
    local need = period * (1 - (limit - cost) / cur)
    retry = (start + period - now) + math.max(0, need)
  else
    retry = period * (1 - (limit - cur - cost) / prev) - elapsed
  end
  local remaining = math.max(0, math.floor(limit - used + 1e-9))
  return {0, remaining, start + period - now, math.max(1, math.ceil(retry))}
end
cur = cur + cost
redis.call('HSET', KEYS[1], 's', start, 'c', cur, 'p', prev)
redis.call('PEXPIREAT', KEYS[1], start + 2 * period)
local remaining = math.max(0, math.floor(limit - used - cost + 1e-9))
return {1, remaining, start + period - now, 0}
